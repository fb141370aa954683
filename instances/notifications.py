"""E-mails about requests. Sent after commit, never inside a transaction, and never with secrets."""

from django.conf import settings
from django.db import transaction

from core import notifications
from instances.models import ChangeRequest


def _send(template: str, request: ChangeRequest, recipients: list[str]) -> None:
    notifications.send(
        template, {"request": request, "url": settings.PORTAL_BASE_URL + request.get_absolute_url()}, recipients
    )


def _load(pk: int) -> ChangeRequest:
    return ChangeRequest.objects.select_related(
        "organisation", "instance", "target_version", "application", "requested_by", "reviewer"
    ).get(pk=pk)


def mail_on_commit(notify, pk: int) -> None:
    """Send ``notify``'s mail about request ``pk`` once the transaction commits. Robust: whatever goes wrong
    with a mail is logged and never fails the action it is about, nor the callbacks after it."""
    transaction.on_commit(lambda: notify(pk), robust=True)


def notify_submitted(pk: int) -> None:
    """Tell maintainers that a request waits for review."""
    _send("request_submitted", _load(pk), notifications.maintainer_emails())


def _notify_requester_and_contacts(template: str, pk: int) -> None:
    request = _load(pk)
    recipients = list(request.organisation.contact_email_list)
    if request.requested_by and request.requested_by.email:
        recipients.append(request.requested_by.email)
    _send(template, request, recipients)


def notify_reviewed(pk: int) -> None:
    """Tell the requester and the organisation's contacts that a request was approved or rejected."""
    _notify_requester_and_contacts("request_reviewed", pk)


def notify_finished(pk: int) -> None:
    """Tell the requester and the organisation's contacts that a request succeeded or failed."""
    _notify_requester_and_contacts("request_finished", pk)
