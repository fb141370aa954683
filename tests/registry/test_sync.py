"""The registry sync against a real Distribution registry: tags and digests stored, removals, re-pushed tags
raising one alert (audit and e-mail), failures stored rather than raised, and the periodic job's record."""

import pytest
from django.core import mail

from core.models import AuditEvent, JobRun
from core.models.jobs import JobRunStatus
from registry.choices import ScanStatus
from registry.clients import client_for
from registry.models import ImageTag, Registry, TagOverwrite
from registry.sync import sync_registries, sync_registry, sync_repository
from tests.registry.conftest import repository

pytestmark = pytest.mark.django_db


def stored(repo) -> dict[str, str]:
    return dict(ImageTag.objects.filter(repository=repo, present=True).values_list("tag", "digest"))


def test_a_sync_stores_every_tag_with_the_digest_the_push_got(server, local, namespace):
    pushed = {tag: server.push(f"{namespace}/core", tag, payload=tag.encode()) for tag in ("1.2.4", "1.2.5", "dev")}
    repo = repository(local, f"{namespace}/core")

    [result] = sync_registry(local)

    assert (result.error, result.added, result.updated, result.removed, result.overwritten) == ("", 3, 0, 0, 0)
    assert stored(repo) == pushed
    tags = ImageTag.objects.filter(repository=repo)
    assert {t.scan_status for t in tags} == {ScanStatus.NOT_SCANNED}
    assert all(t.first_digest == t.digest for t in tags)
    repo.refresh_from_db()
    local.refresh_from_db()
    assert repo.last_sync_at is not None and repo.last_error == ""
    assert local.last_sync_at is not None and local.last_error == ""


def test_a_second_sync_with_nothing_changed_writes_nothing(server, local, namespace):
    server.push(f"{namespace}/core", "1.2.4")
    repo = repository(local, f"{namespace}/core")
    sync_repository(repo)
    seen = dict(ImageTag.objects.filter(repository=repo).values_list("tag", "last_seen_at"))

    again = sync_repository(repo)

    assert (again.added, again.updated, again.removed, again.overwritten) == (0, 0, 0, 0)
    # last_seen_at is auto_now: any save of the row would have moved it.
    assert dict(ImageTag.objects.filter(repository=repo).values_list("tag", "last_seen_at")) == seen
    assert TagOverwrite.objects.count() == 0


def test_a_removed_tag_is_kept_as_not_present(server, local, namespace):
    path = f"{namespace}/core"
    kept = server.push(path, "1.2.4", payload=b"kept")
    removed = server.push(path, "1.2.5", payload=b"removed")
    repo = repository(local, path)
    sync_repository(repo)
    if not server.delete(path, removed):
        pytest.skip("this registry does not allow deleting manifests")

    result = sync_repository(repo)

    assert (result.removed, result.added) == (1, 0)
    assert stored(repo) == {"1.2.4": kept}
    gone = ImageTag.objects.get(repository=repo, tag="1.2.5")
    assert (gone.present, gone.digest) == (False, removed)
    assert sync_repository(repo).removed == 0  # gone once, not at every sync


def test_a_repushed_tag_raises_one_alert_audited_and_mailed(
    server, local, namespace, maintainer, maintainer2, admin_unistra, django_capture_on_commit_callbacks
):
    path = f"{namespace}/core"
    old = server.push(path, "1.2.4", payload=b"first build")
    repo = repository(local, path)
    sync_repository(repo)
    new = server.push(path, "1.2.4", payload=b"second build")
    assert new != old

    with django_capture_on_commit_callbacks(execute=True):
        result = sync_repository(repo)

    assert (result.overwritten, result.updated) == (1, 1)
    overwrite = TagOverwrite.objects.get()
    assert (overwrite.old_digest, overwrite.new_digest, overwrite.resolved_at) == (old, new, None)
    tag = ImageTag.objects.get(repository=repo, tag="1.2.4")
    assert (tag.digest, tag.first_digest) == (new, old)
    event = AuditEvent.objects.get(action="registry.tag_overwritten")
    assert (event.before, event.after) == ({"digest": old}, {"digest": new})
    assert (event.target_type, event.target_id, event.actor) == ("registry.imagetag", str(tag.pk), None)
    [message] = mail.outbox
    assert sorted(message.to) == ["maintainer2@example.org", "maintainer@example.org"]  # not the admin
    assert f"{repo.reference}:1.2.4" in message.subject
    assert old in message.body and new in message.body

    with django_capture_on_commit_callbacks(execute=True):
        again = sync_repository(repo)

    assert again.overwritten == 0
    assert TagOverwrite.objects.count() == 1
    assert AuditEvent.objects.filter(action="registry.tag_overwritten").count() == 1
    assert len(mail.outbox) == 1


def test_a_tag_removed_then_pushed_again_elsewhere_is_an_overwrite(server, local, namespace):
    path = f"{namespace}/core"
    old = server.push(path, "1.2.4", payload=b"first")
    repo = repository(local, path)
    sync_repository(repo)
    if not server.delete(path, old):
        pytest.skip("this registry does not allow deleting manifests")
    sync_repository(repo)
    new = server.push(path, "1.2.4", payload=b"second")

    result = sync_repository(repo)

    assert result.overwritten == 1
    assert TagOverwrite.objects.get().new_digest == new
    assert stored(repo) == {"1.2.4": new}


class Overtaken:
    """A client whose read is overtaken: once it has read the registry, a new push and another sync (a webhook's,
    quicker) commit before it returns, as happens to a periodic sync slow on many tags."""

    def __init__(self, client, overtake):
        self._client, self._overtake = client, overtake

    def tags(self, path):
        tags = self._client.tags(path)
        self._overtake()
        return tags


def test_a_sync_overtaken_by_another_does_not_move_the_tag_back(server, local, namespace):
    path = f"{namespace}/core"
    old = server.push(path, "1.2.4", payload=b"first build")
    repo = repository(local, path)
    sync_repository(repo)
    pushed = {}

    def push_and_sync():
        pushed["new"] = server.push(path, "1.2.4", payload=b"second build")
        sync_repository(repo)  # one alert, old -> new

    sync_repository(repo, client=Overtaken(client_for(local), push_and_sync))

    assert ImageTag.objects.get(repository=repo, tag="1.2.4").digest == pushed["new"]
    assert list(TagOverwrite.objects.values_list("old_digest", "new_digest")) == [(old, pushed["new"])]


def test_an_unreachable_registry_is_recorded_not_raised(down, namespace):
    repo = repository(down, f"{namespace}/core")
    ImageTag.objects.create(
        repository=repo, tag="1.2.4", digest="sha256:" + "a" * 64, first_digest="sha256:" + "a" * 64
    )

    [result] = sync_registry(down)

    assert "cannot be reached" in result.error
    repo.refresh_from_db()
    down.refresh_from_db()
    assert "cannot be reached" in repo.last_error
    assert repo.last_sync_at is not None
    assert "cannot be reached" in down.last_error and repo.path in down.last_error
    # What the portal knew stays as it was: a failed read is no proof that the tag is gone.
    assert ImageTag.objects.get(repository=repo).present


def test_an_unknown_repository_says_it_does_not_exist(local, namespace):
    repo = repository(local, f"{namespace}/never-pushed")

    [result] = sync_registry(local)

    repo.refresh_from_db()
    assert "does not exist" in result.error
    assert "does not exist" in repo.last_error
    assert ImageTag.objects.filter(repository=repo).count() == 0


def test_an_error_clears_once_the_repository_answers(server, local, namespace):
    path = f"{namespace}/core"
    repo = repository(local, path)
    sync_repository(repo)
    server.push(path, "1.2.4")

    sync_registry(local)

    repo.refresh_from_db()
    local.refresh_from_db()
    assert (repo.last_error, local.last_error) == ("", "")
    assert list(stored(repo)) == ["1.2.4"]


def test_one_repository_failing_does_not_stop_the_others(server, local, namespace):
    good = repository(local, f"{namespace}/core")
    bad = repository(local, f"{namespace}/missing")
    digest = server.push(good.path, "1.2.4")

    results = {r.repository: r for r in sync_registry(local)}

    assert results[good.reference].error == ""
    assert "does not exist" in results[bad.reference].error
    assert stored(good) == {"1.2.4": digest}
    local.refresh_from_db()
    assert bad.path in local.last_error and good.path not in local.last_error


def test_the_periodic_sync_records_its_run(server, local, down, namespace):
    good = repository(local, f"{namespace}/core")
    digest = server.push(good.path, "1.2.4")
    unreachable = repository(down, f"{namespace}/core")

    summary = sync_registries()

    run = JobRun.objects.get(name="registry sync")
    assert run.status == JobRunStatus.SUCCEEDED
    assert run.finished_at is not None and run.result == summary
    assert f"{good.reference}: 1 new, 0 updated, 0 gone, 0 overwritten" in run.result
    assert unreachable.reference in run.result and "cannot be reached" in run.result
    assert stored(good) == {"1.2.4": digest}


def test_the_periodic_sync_without_registry_says_so(db):
    assert not Registry.objects.exists()

    assert sync_registries() == "no registry configured"
    assert JobRun.objects.get(name="registry sync").status == JobRunStatus.SUCCEEDED
