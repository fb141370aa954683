"""E-mails about requests. Sent after commit, never inside a transaction, and never with secrets."""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import translation

from instances.models import ChangeRequest
from portal.choices import APPROVE_PERMISSION

logger = logging.getLogger(__name__)


def maintainer_emails() -> list[str]:
    app_label, codename = APPROVE_PERMISSION.split(".")
    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    perm = Q(groups__permissions__codename=codename, groups__permissions__content_type__app_label=app_label)
    direct = Q(user_permissions__codename=codename, user_permissions__content_type__app_label=app_label)
    return sorted(set(users.filter(perm | direct | Q(is_superuser=True)).values_list("email", flat=True)))


def _send(template: str, request: ChangeRequest, recipients: list[str]) -> None:
    recipients = sorted({r for r in recipients if r})
    if not recipients:
        return
    context = {"request": request, "url": settings.PORTAL_BASE_URL + request.get_absolute_url()}
    # Mails go to several people who may read either language; English is the common ground.
    with translation.override(settings.LANGUAGE_CODE):
        subject = render_to_string(f"emails/{template}_subject.txt", context).strip()
        body = render_to_string(f"emails/{template}.txt", context)
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    except OSError:
        # A mail server outage must not undo or fail the request; the audit trail has the facts.
        logger.exception("could not send %s mail about request %s", template, request.pk)


def _load(pk: int) -> ChangeRequest:
    return ChangeRequest.objects.select_related(
        "organisation", "instance", "target_version", "application", "requested_by", "reviewer"
    ).get(pk=pk)


def notify_submitted(pk: int) -> None:
    """Tell maintainers that a request waits for review."""
    _send("request_submitted", _load(pk), maintainer_emails())


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
