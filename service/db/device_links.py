"""What the gateways last reported of each registered band: its link, battery and skin contact.

A gateway publishes a band's status (retained) when its link changes and with each battery
reading (:mod:`flarewatch.payloads`, ``DeviceStatus``). Kept on the band's row, the people who
see the patient see whether it is connected, since when, and if not why ("the gateway cannot
pair with it"), without Grafana. Statuses of bands nobody registered, or registered to another
patient, are not kept (the topic's patient is the gateway's word, the registry the service's).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from flarewatch.payloads import DeviceStatus
from service.db.models import Device


def record_link(session: Session, status: DeviceStatus) -> bool:
    """Keep ``status`` on its band's row; whether the band is registered to that patient.

    A status older than the one kept (a retained one read again at start) changes nothing.
    """
    device = session.get(Device, status.device_id)
    if device is None or device.patient_id != status.patient_id:
        return False
    time_s = status.time_ms / 1000.0
    if device.reported_s is not None and time_s < device.reported_s:
        return True
    state = str(status.state)
    if device.link_state != state:
        device.link_state, device.link_since_s = state, time_s
    device.link_reason = status.reason
    device.reported_s = time_s
    if status.battery_percent is not None:
        device.battery_percent = status.battery_percent
    if status.contact_detected is not None:
        device.contact_detected = status.contact_detected
    return True
