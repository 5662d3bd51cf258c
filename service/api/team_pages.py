"""The pages of a patient building their care team: someone invited, someone to take off.

Built like the other app pages (:mod:`service.api.web_pages`): no script, every value escaped
here.
"""

from __future__ import annotations

import html

from fastapi.responses import HTMLResponse

from service.api.alert_view import person_html
from service.api.care_pages import act_form
from service.api.pages import page
from service.api.web_pages import account_bar
from service.api.web_session import APP_PATH
from service.db.models import Account, Contact


def _back(patient_id: str) -> str:
    return f'<p><a href="{APP_PATH}/patients/{html.escape(patient_id)}">Back to your page</a></p>'


def invited_page(
    account: Account, form_token: str, patient_id: str, member: str, *, mailed: bool, again: bool
) -> HTMLResponse:
    """Who is on the team now, whether the e-mail went, and that no alert reaches them yet.

    The same words whether the address had an account or not: that is its owner's business.
    ``again``: they were on the team already and were reminded.
    """
    who = person_html(member)
    done = f"{who} was told again." if again else f"{who} is on your care team."
    told = (
        f"An e-mail tells {who} how to join."
        if mailed
        else f"The e-mail to {who} could not be sent just now: press Remind {who} on your page "
        "later."
    )
    return page(
        "Invited",
        f"{account_bar(account, form_token)}"
        f'<p class="state done" role="status">{done}</p><p>{told}</p>'
        f"<p>No alert reaches {who} until they add where it should (on their account page): "
        "your page says so until then.</p>" + _back(patient_id),
    )


def take_off_page(
    account: Account, form_token: str, patient_id: str, contact: Contact, alone: bool
) -> HTMLResponse:
    """Asked once more: taking someone off ends their access and their alerts at once.

    ``alone``: nobody else on the team has a channel, so alerts would reach nobody.
    """
    who = person_html(contact.name)
    return _asked_page(
        account,
        form_token,
        "Take off the care team?",
        "your alerts" if alone else "",
        f"<p>{who} will no longer see your page or hear of your alerts, from now on: an alert "
        "waiting on them goes to the next person. You can invite them again later.</p>",
        f"{APP_PATH}/patients/{html.escape(patient_id)}/team/{contact.id}/remove",
        f"Take {who} off the care team",
        _back(patient_id),
    )


def leave_page(
    account: Account, form_token: str, contact: Contact, patient: str, alone: bool
) -> HTMLResponse:
    """Asked once more: leaving a care team ends one's access and alerts at once.

    ``alone``: nobody else on the team has a channel, so alerts would reach nobody.
    """
    who = person_html(patient)
    return _asked_page(
        account,
        form_token,
        "Leave the care team?",
        f"alerts about {who}" if alone else "",
        f"<p>You will no longer see {who}'s page or hear of their alerts, from now on: an alert "
        "waiting on you goes to the next person. Only they can invite you again.</p>",
        f"{APP_PATH}/account/teams/{contact.id}/leave",
        f"Leave {who}'s care team",
        f'<p><a href="{APP_PATH}/account">Back to your account</a></p>',
    )


def _asked_page(
    account: Account,
    form_token: str,
    title: str,
    unreached: str,
    consequence: str,
    action: str,
    button: str,
    back: str,
) -> HTMLResponse:
    """The question before someone leaves a team; ``unreached``: whose alerts would reach nobody."""
    warning = (
        f'<p class="state" role="alert">Nobody else on the team can be reached: {unreached} '
        "would reach nobody. Tell them first.</p>"
        if unreached
        else ""
    )
    return page(
        title,
        f"{account_bar(account, form_token)}{warning}{consequence}"
        + act_form(action, form_token, '<input type="hidden" name="confirm" value="yes">', button)
        + back,
    )
