"""The registry pages for maintainers: registries, repositories, tags with their scans, which instances run which
digest, the last sync and its errors, and the alerts of overwritten tags. They join the registry's data with the
instances', which is why they live here and not in the registry app."""

from __future__ import annotations

from collections import defaultdict

from django.contrib import messages
from django.db.models import Count, Prefetch, Q
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l
from django.views import View
from django.views.generic import DetailView, ListView

from core.audit import AuditContext
from core.jobs import enqueue
from core.views import MaintainerRequiredMixin
from instances.choices import InstanceStatus
from instances.models import Instance
from registry.models import ImageRepository, ImageTag, Registry, TagOverwrite
from registry.sync import resolve_overwrite, sync_registry_job

DENIED = _l("Only maintainers can see the registries.")


def running_digests() -> dict[str, list[str]]:
    """digest -> slugs of the instances running it (one query)."""
    running: dict[str, list[str]] = defaultdict(list)
    for slug, images in Instance.objects.exclude(status=InstanceStatus.DELETED).values_list("slug", "images"):
        for ref in (images or {}).values():
            if ref.get("digest"):
                running[ref["digest"]].append(slug)
    return running


class RegistryListView(MaintainerRequiredMixin, ListView):
    denied_message = DENIED
    template_name = "registry/registry_list.html"
    context_object_name = "registries"

    def get_queryset(self):
        return (
            Registry.objects.defer("secret", "webhook_secret")
            .annotate(
                repository_count=Count("repositories", distinct=True),
                failing=Count("repositories", filter=~Q(repositories__last_error=""), distinct=True),
                open_alerts=Count(
                    "repositories__tags__overwrites",
                    filter=Q(repositories__tags__overwrites__resolved_at__isnull=True),
                    distinct=True,
                ),
            )
            .order_by("name")
        )


class RegistryDetailView(MaintainerRequiredMixin, DetailView):
    denied_message = DENIED
    template_name = "registry/registry_detail.html"
    context_object_name = "registry"

    def get_queryset(self):
        tags = ImageTag.objects.present().order_by("-pushed_at", "-tag")
        return Registry.objects.defer("secret", "webhook_secret").prefetch_related(
            Prefetch(
                "repositories",
                queryset=ImageRepository.objects.prefetch_related(Prefetch("tags", queryset=tags)).order_by("path"),
            )
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        running = running_digests()
        for repository in self.object.repositories.all():
            for tag in repository.tags.all():
                tag.running = running.get(tag.digest, [])
        alerts = list(
            TagOverwrite.objects.open()
            .filter(tag__repository__registry=self.object)
            .select_related("tag__repository__registry")
        )
        for alert in alerts:
            alert.running_old = running.get(alert.old_digest, [])
        context["alerts"] = alerts
        context["webhook_url"] = self.request.build_absolute_uri(
            reverse("registry_api:webhook", kwargs={"pk": self.object.pk})
        )
        return context


class RegistrySyncView(MaintainerRequiredMixin, View):
    """POST: sync one registry now (in the background)."""

    denied_message = DENIED
    http_method_names = ["post"]

    def post(self, request, pk):
        registry = get_object_or_404(Registry.objects.only("pk", "name"), pk=pk)
        enqueue(sync_registry_job, registry.pk, queue="sync")
        messages.success(request, _("A sync of %(name)s is queued; reload the page in a moment.") % {"name": registry})
        return redirect("instances:registry_detail", pk=registry.pk)


class OverwriteResolveView(MaintainerRequiredMixin, View):
    """POST: a maintainer has dealt with an overwritten tag; its alert closes."""

    denied_message = DENIED
    http_method_names = ["post"]

    def post(self, request, pk):
        overwrite = get_object_or_404(TagOverwrite.objects.select_related("tag__repository"), pk=pk)
        if resolve_overwrite(AuditContext.from_request(request), overwrite):
            messages.success(request, _("The alert about %(tag)s is closed.") % {"tag": overwrite.tag})
        return redirect("instances:registry_detail", pk=overwrite.tag.repository.registry_id)
