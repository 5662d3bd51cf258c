"""Caregiver alerts: lifecycle, escalation scheduler, notifiers, messages and acknowledgement.

Import each part from its own module: the package loads none of them (Apprise among them), so a
command that needs one part, such as the audit trail, does not pay for the rest.
"""
