"""An application's versions from its registry: refreshed after each registry sync, resolved to digests at approval.

The registry app reads tags and judges scans; this module maps an application's components onto it, keeps the
``ApplicationVersion`` rows in step (so that requests keep referring to versions), and pins a version's images to
the digests its tags point to when a request is approved.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.dispatch import receiver
from django.utils.translation import gettext as _

from core.errors import Conflict
from instances.choices import VersionSource
from instances.models import Application, ApplicationComponent, ApplicationVersion
from instances.versions import validate_version
from registry import catalogue
from registry.models import ImageTag
from registry.signals import tags_synced

logger = logging.getLogger(__name__)


def _components(application: Application) -> list[ApplicationComponent]:
    return list(application.components.select_related("repository__registry"))


def refresh_versions(application: Application) -> tuple[int, int]:
    """Make the application's versions what its registry holds: (versions available, of which deployable).

    A version the registry no longer has becomes unavailable (requests and instances keep referring to it).
    """
    components = _components(application)
    if not components:
        return 0, 0
    found = catalogue.versions(
        {c.component: c.repository_id for c in components}, application.release_pattern, application.scan_policy
    )
    placeholders = {c.component: c.placeholder for c in components}
    seen = set()
    with transaction.atomic():
        rows = ApplicationVersion.objects.select_for_update().filter(application=application)
        existing = {v.version: v for v in rows}
        for entry in found:
            try:
                validate_version(entry.version)
            except ValidationError:
                logger.info("tag %s of %s matches the release pattern but is no version", entry.version, application)
                continue
            seen.add(entry.version)
            fields = {
                "is_available": True,
                "source": VersionSource.REGISTRY,
                "deployable": entry.deployable,
                "blockers": [blocker.as_json() for blocker in entry.blockers],
                "images": {placeholders[component]: ref for component, ref in entry.images().items()},
            }
            version = existing.get(entry.version)
            if version is None:
                ApplicationVersion.objects.create(application=application, version=entry.version, **fields)
            elif any(getattr(version, key) != value for key, value in fields.items()):
                ApplicationVersion.objects.filter(pk=version.pk).update(**fields)
        gone = [v.pk for name, v in existing.items() if name not in seen and v.source == VersionSource.REGISTRY]
        ApplicationVersion.objects.filter(pk__in=gone, is_available=True).update(is_available=False)
    return len(seen), sum(1 for entry in found if entry.deployable and entry.version in seen)


@receiver(tags_synced)
def _refresh_after_sync(sender, repository_ids, **kwargs) -> None:
    for application in Application.objects.filter(components__repository_id__in=repository_ids).distinct():
        refresh_versions(application)


def resolve(application: Application, version: ApplicationVersion) -> tuple[dict, list[dict]]:
    """The images of ``version`` pinned to the digests its tags point to now, and what blocks it (the scan
    policy applied to those very images). Images of the application's own map (no registry) keep their tag."""
    images = application.image_refs(version.version)
    components = _components(application)
    if not components:
        return images, []
    tags = {
        tag.repository_id: tag
        for tag in ImageTag.objects.present()
        .filter(repository__in=[c.repository_id for c in components], tag=version.version)
        .select_related("repository__registry")
    }
    blockers = []
    for component in components:
        tag = tags.get(component.repository_id)
        if tag is None:
            raise Conflict(
                _("%(version)s is no longer in the registry: %(repository)s has no tag %(version)s.")
                % {"version": version.version, "repository": component.repository.reference},
                field="version",
            )
        images[component.placeholder] = {"repository": tag.repository.reference, "tag": tag.tag, "digest": tag.digest}
        blockers += [b.as_json() for b in catalogue.blockers_for(component.component, tag, application.scan_policy)]
    return dict(sorted(images.items())), blockers
