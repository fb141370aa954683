"""A backup's download: a redirect to a short-lived signed link (``instances.backup_downloads``)."""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.views import View

from core.audit import AuditContext
from core.errors import DomainError, NotAllowed
from instances.backup_downloads import download_url
from instances.models import Instance


class BackupDownloadView(LoginRequiredMixin, View):
    """GET: 302 to the dump's signed URL; a viewer is refused (403), another organisation's instance is 404, and
    a backup that cannot be downloaded sends back to the instance page with a message."""

    def get(self, request, slug, pk):
        instance = get_object_or_404(
            Instance.objects.visible_to(request.user).select_related("organisation"), slug=slug
        )
        backup = get_object_or_404(instance.backups, pk=pk)  # the related manager sets backup.instance
        try:
            url = download_url(AuditContext.from_request(request), request.user, backup)
        except NotAllowed as error:
            raise PermissionDenied(str(error.message)) from None
        except DomainError as error:
            messages.error(request, error.message)
            return redirect(instance)
        return redirect(url)
