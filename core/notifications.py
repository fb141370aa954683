"""Sending the portal's e-mails: rendered from templates in the common language, never failing the caller.

Callers send after their transaction commits and never put secrets in the context.
"""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import translation

from core.choices import APPROVE_PERMISSION

logger = logging.getLogger(__name__)


def maintainer_emails() -> list[str]:
    """Addresses of every active maintainer (approval permission through a group, directly, or superuser)."""
    # The permission lives in the database (groups and users), which is the model backend's to answer.
    users = get_user_model().objects.with_perm(APPROVE_PERMISSION, backend="django.contrib.auth.backends.ModelBackend")
    return sorted(set(users.exclude(email="").values_list("email", flat=True)))


def send(template: str, context: dict, recipients: list[str]) -> bool:
    """Send ``emails/<template>_subject.txt`` and ``emails/<template>.txt`` to ``recipients``.

    Returns whether a mail went out. A mail server outage is logged, never raised: it must not undo or fail
    the action the mail is about (the audit trail has the facts).
    """
    recipients = sorted({r for r in recipients if r})
    if not recipients:
        return False
    # Mails go to several people who may read either language; English is the common ground.
    with translation.override(settings.LANGUAGE_CODE):
        subject = render_to_string(f"emails/{template}_subject.txt", context).strip()
        body = render_to_string(f"emails/{template}.txt", context)
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    except OSError:
        logger.exception("could not send the %s mail", template)
        return False
    return True
