"""Importing instruction files: created / unchanged / cancelled / error lines, dry runs, tenancy, the export."""

import datetime
import zoneinfo

import pytest
from django.core import mail
from django.utils import timezone

from core.audit import AuditContext
from core.models import AuditEvent, Organisation
from instances import workflow
from instances.choices import RequestKind, RequestSource, RequestStatus
from instances.instructions.export import export_text
from instances.instructions.importer import import_instructions
from instances.instructions.parser import InstructionFileError
from instances.instructions.report import ImportReport
from instances.models import Application, ApplicationVersion, ChangeRequest, InstructionSource
from tests.conftest import ctx, make_member

pytestmark = pytest.mark.django_db

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


@pytest.fixture(autouse=True)
def _paris(settings):
    settings.TIME_ZONE = "Europe/Paris"


def at(days=3, hour=14, minute=30) -> datetime.datetime:
    day = timezone.localdate(timezone.now(), PARIS) + datetime.timedelta(days=days)
    return datetime.datetime.combine(day, datetime.time(hour, minute), tzinfo=PARIS)


def stamp(when: datetime.datetime) -> str:
    return when.astimezone(PARIS).strftime("%d/%m/%Y-%H:%M")


def statuses(report) -> list[tuple]:
    return [(line["line"], line["status"]) for line in report.as_dict()["lines"]]


def messages_of(report) -> dict:
    return {line["line"]: line["message"] for line in report.as_dict()["lines"]}


def test_each_line_becomes_a_request_through_the_workflow(admin_unistra, instance_unistra, versions):
    when = at()
    report = import_instructions(ctx(admin_unistra), f"# plan\nU|smile-unistra|1.2.6|{stamp(when)}\n")
    answer = report.as_dict()
    assert (answer["created"], answer["unchanged"], answer["cancelled"], answer["errors"]) == (1, 0, 0, 0)
    line = answer["lines"][0]
    request = ChangeRequest.objects.get(pk=line["request"])
    assert (line["line"], line["status"], line["warning"]) == (2, "created", None)
    assert line["message"] == f"Request #{request.pk} filed (Submitted)."
    assert (request.kind, request.instance, request.target_version) == ("update", instance_unistra, versions["1.2.6"])
    assert request.scheduled_for == when
    assert request.source == RequestSource.INSTRUCTIONS
    assert (request.instruction_line, request.instruction_source, request.instruction_commit) == (2, None, "")
    assert request.requested_by == admin_unistra
    assert AuditEvent.objects.filter(action="request.submitted", target_id=str(request.pk)).count() == 1


def test_importing_the_same_file_twice_changes_nothing(admin_unistra, instance_unistra, unistra, versions):
    text = f"U|smile-unistra|1.2.6|{stamp(at())}\nC|unistra|1.2.5|{stamp(at(5))}\n"
    first = import_instructions(ctx(admin_unistra), text)
    assert statuses(first) == [(1, "created"), (2, "created")]
    count, events = ChangeRequest.objects.count(), AuditEvent.objects.count()
    second = import_instructions(ctx(admin_unistra), text)
    assert statuses(second) == [(1, "unchanged"), (2, "unchanged")]
    assert [line.request for line in second.lines] == [line.request for line in first.lines]
    assert messages_of(second)[1] == f"Request #{first.lines[0].request} (Submitted) already asks for this."
    assert (ChangeRequest.objects.count(), AuditEvent.objects.count()) == (count, events)


def test_a_bad_line_does_not_block_the_others(admin_unistra, instance_unistra, versions):
    text = (
        f"U|smile-unistra|9.9.9|{stamp(at())}\n"
        f"Z|smile-unistra|1.2.6|{stamp(at())}\n"
        f"U|smile-unistra|1.2.6|{stamp(at())}\n"
        f"U|nowhere|1.2.6|{stamp(at())}\n"
    )
    report = import_instructions(ctx(admin_unistra), text)
    assert statuses(report) == [(1, "error"), (2, "error"), (3, "created"), (4, "error")]
    assert messages_of(report)[1] == "SMILE has no version 9.9.9."
    assert messages_of(report)[4] == "There is no instance named nowhere."
    assert ChangeRequest.objects.count() == 1


def test_another_organisations_instance_is_reported_as_unknown(admin_unistra, instance_unicaen, unicaen, versions):
    when = stamp(at())
    text = (
        f"U|smile-unicaen|1.2.6|{when}\nD|smile-unicaen||{when}\nU|ghost|1.2.6|{when}\n"
        f"C|unicaen|1.2.6|{when}\nC|ghost|1.2.6|{when}\n"
    )
    report = import_instructions(ctx(admin_unistra), text)
    found = messages_of(report)
    assert found[1] == found[2] == "There is no instance named smile-unicaen."
    assert found[3] == "There is no instance named ghost."
    assert found[4].replace("unicaen", "ghost") == found[5]
    assert found[5].startswith("No organisation matches ghost")
    assert ChangeRequest.objects.count() == 0


def test_workflow_checks_are_reported_on_their_line(admin_unistra, instance_unistra, unistra, smile, versions):
    ApplicationVersion.objects.filter(pk=versions["1.2.5"].pk).update(
        deployable=False, blockers=[{"component": "core", "code": "vulnerable", "count": 2, "block_at": "critical"}]
    )
    ApplicationVersion.objects.filter(pk=versions["1.2.6"].pk).update(is_available=False)
    ApplicationVersion.objects.create(application=smile, version="1.2.3")
    report = import_instructions(
        ctx(admin_unistra),
        f"U|smile-unistra|1.2.5|{stamp(at())}\nU|smile-unistra|1.2.6|{stamp(at())}\n"
        f"U|smile-unistra|1.2.3|{stamp(at())}\nC|smile-unistra|1.2.4|{stamp(at())}\n"
        f"C|unistra|1.2.4|{stamp(at(400))}\n",
    )
    found = messages_of(report)
    assert statuses(report) == [(n, "error") for n in range(1, 6)]
    assert found[1] == "1.2.5 cannot be deployed: core: 2 vulnerabilities at Critical."
    assert found[2] == "1.2.6 is not an available version of SMILE."
    assert found[3] == "Choose a version newer than 1.2.4."
    assert found[4] == "An instance named smile-unistra already exists."
    assert found[5] == "Choose a date within the next year."


def test_conflicting_open_request_is_named(admin_unistra, instance_unistra, versions):
    open_one = workflow.request_update(ctx(admin_unistra), instance_unistra, version=versions["1.2.5"])
    report = import_instructions(ctx(admin_unistra), f"D|smile-unistra||{stamp(at())}")
    assert report.lines[0].status == "error"
    assert f"Request #{open_one.pk} (Upgrade, Submitted) is already open" in report.as_dict()["lines"][0]["message"]


def test_a_past_date_is_due_now_with_a_warning_and_reimports_unchanged(admin_unistra, instance_unistra, versions):
    past = at(days=-2)
    text = f"U|smile-unistra|1.2.6|{stamp(past)}"
    report = import_instructions(ctx(admin_unistra), text)
    line = report.as_dict()["lines"][0]
    assert line["status"] == "created"
    assert line["warning"] == f"{stamp(past)} is past: the request is due as soon as it is approved."
    assert ChangeRequest.objects.get(pk=line["request"]).scheduled_for is None
    again = import_instructions(ctx(admin_unistra), text).as_dict()["lines"][0]
    assert (again["status"], again["request"]) == ("unchanged", line["request"])
    assert again["warning"] == line["warning"]


def test_dry_run_writes_nothing_and_reports_what_a_real_import_would(
    admin_unistra, instance_unistra, unistra, versions, django_capture_on_commit_callbacks
):
    text = (
        f"U|smile-unistra|1.2.6|{stamp(at())}\nC|unistra|1.2.5|{stamp(at(-1))}\nU|nowhere|1.2.6|{stamp(at())}\n"
        f"U|smile-unistra|1.2.6|{stamp(at())}\n"
    )
    counts = (ChangeRequest.objects.count(), AuditEvent.objects.count())
    with django_capture_on_commit_callbacks() as callbacks:
        dry = import_instructions(ctx(admin_unistra), text, dry_run=True)
    assert callbacks == []
    assert (ChangeRequest.objects.count(), AuditEvent.objects.count()) == counts
    assert mail.outbox == []
    real = import_instructions(ctx(admin_unistra), text)
    dry_lines, real_lines = dry.as_dict()["lines"], real.as_dict()["lines"]
    assert [(d["line"], d["status"], d["warning"]) for d in dry_lines] == [
        (r["line"], r["status"], r["warning"]) for r in real_lines
    ]
    assert statuses(real) == [(1, "created"), (2, "created"), (3, "error"), (4, "unchanged")]
    assert dry.as_dict()["dry_run"] is True and dry_lines[0]["request"] is None
    assert dry_lines[0]["message"] == "A request would be filed."
    assert dry_lines[3]["request"] is None  # the repeat of line 1 names no rolled-back request
    assert real_lines[3]["message"] == "Same instruction as line 1."
    assert real_lines[3]["request"] == real.lines[0].request


def test_real_import_mails_the_maintainers_once_committed(
    admin_unistra, instance_unistra, versions, maintainer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        import_instructions(ctx(admin_unistra), f"U|smile-unistra|1.2.6|{stamp(at())}")
    assert [message.to for message in mail.outbox] == [[maintainer.email]]


def test_create_names_the_instance_after_its_organisation(admin_unistra, unistra, smile, versions):
    Organisation.objects.create(name="Université de Haute-Alsace", slug="uha")
    make_member_admin = make_member("admin-uha", Organisation.objects.get(slug="uha"), "admin")
    report = import_instructions(ctx(admin_unistra), f"C|unistra|1.2.5|{stamp(at())}\nC|smile-uha|1.2.5|{stamp(at())}")
    assert statuses(report) == [(1, "created"), (2, "error")]
    created = ChangeRequest.objects.get(pk=report.lines[0].request)
    assert (created.kind, created.organisation, created.proposed_slug, created.application) == (
        RequestKind.CREATE,
        unistra,
        "unistra",
        smile,
    )
    other = import_instructions(ctx(make_member_admin), f"C|smile-uha|1.2.5|{stamp(at())}")
    assert ChangeRequest.objects.get(pk=other.lines[0].request).organisation.slug == "uha"


def test_delete_with_an_empty_or_the_current_version(admin_unistra, instance_unistra, instance_unicaen, maintainer):
    report = import_instructions(
        ctx(maintainer),
        f"D|smile-unistra|1.2.5|{stamp(at())}\nD|smile-unistra|1.2.4|{stamp(at())}\nD|smile-unicaen||{stamp(at())}",
    )
    assert statuses(report) == [(1, "error"), (2, "created"), (3, "created")]
    assert report.as_dict()["lines"][0]["message"] == (
        "smile-unistra runs 1.2.4, not 1.2.5: correct the version or leave it empty."
    )
    deletions = ChangeRequest.objects.filter(kind=RequestKind.DELETE)
    assert sorted(deletions.values_list("instance__slug", flat=True)) == ["smile-unicaen", "smile-unistra"]
    assert not deletions.filter(target_version__isnull=False).exists()


def test_a_viewer_files_nothing(viewer_unistra, instance_unistra, versions):
    report = import_instructions(ctx(viewer_unistra), f"U|smile-unistra|1.2.6|{stamp(at())}")
    assert report.as_dict()["lines"][0]["message"] == (
        "Only functional admins of Université de Strasbourg can file requests for it."
    )
    assert ChangeRequest.objects.count() == 0


def test_done_and_rejected_lines_stay_unchanged(admin_unistra, instance_unistra, unistra, versions, maintainer):
    text = f"U|smile-unistra|1.2.6|{stamp(at())}\nC|unistra|1.2.5|{stamp(at(6))}"
    first = import_instructions(ctx(admin_unistra), text)
    upgrade, creation = (ChangeRequest.objects.get(pk=line.request) for line in first.lines)
    ChangeRequest.objects.filter(pk=upgrade.pk).update(status=RequestStatus.SUCCEEDED)
    creation.reject(ctx(maintainer), "not this year")
    again = import_instructions(ctx(admin_unistra), text).as_dict()["lines"]
    assert [(line["status"], line["request"]) for line in again] == [
        ("unchanged", upgrade.pk),
        ("unchanged", creation.pk),
    ]
    assert again[0]["message"] == f"Already done by request #{upgrade.pk}."
    assert again[1]["message"] == f"Request #{creation.pk} asked for this and was rejected."
    assert again[1]["warning"] == "Rejected: change the line (its date, for instance) to ask again."


def test_a_cancelled_line_is_filed_again(admin_unistra, instance_unistra, versions):
    text = f"U|smile-unistra|1.2.6|{stamp(at())}"
    first = import_instructions(ctx(admin_unistra), text).lines[0].request
    ChangeRequest.objects.get(pk=first).cancel(ctx(admin_unistra))
    second = import_instructions(ctx(admin_unistra), text).lines[0]
    assert second.status == "created" and second.request != first


def test_source_lines_removed_or_edited_cancel_their_requests(instance_unistra, instance_unicaen, versions):
    source = InstructionSource.objects.create(name="hosting", url="/srv/git/instructions.git")
    system = AuditContext.system("instructions file hosting")
    first = import_instructions(
        system,
        f"U|smile-unistra|1.2.5|{stamp(at())}\nU|smile-unicaen|1.2.6|{stamp(at())}",
        source=source,
        commit="a" * 40,
    )
    old_unistra, unicaen = first.lines[0].request, first.lines[1].request
    assert ChangeRequest.objects.get(pk=old_unistra).instruction_source == source
    second = import_instructions(system, f"U|smile-unistra|1.2.6|{stamp(at())}", source=source, commit="b" * 40)
    lines = second.as_dict()["lines"]
    assert [(line["line"], line["status"]) for line in lines] == [
        (1, "created"),
        (None, "cancelled"),
        (None, "cancelled"),
    ]
    assert {lines[1]["request"], lines[2]["request"]} == {old_unistra, unicaen}
    assert lines[1]["message"] == (
        f"Request #{old_unistra} cancelled: line 1 of commit aaaaaaaaaa was removed from the file."
    )
    assert ChangeRequest.objects.get(pk=lines[0]["request"]).instruction_commit == "b" * 40
    cancelled = ChangeRequest.objects.get(pk=unicaen)
    assert cancelled.status == RequestStatus.CANCELLED
    assert cancelled.reason.startswith(f"Request #{unicaen} cancelled: line 2 of commit")
    assert AuditEvent.objects.get(action="request.cancelled", target_id=str(unicaen)).actor_label == (
        "system: instructions file hosting"
    )


def test_an_upload_cancels_nothing(admin_unistra, instance_unistra, versions):
    import_instructions(ctx(admin_unistra), f"U|smile-unistra|1.2.6|{stamp(at())}")
    assert import_instructions(ctx(admin_unistra), "# empty").as_dict()["cancelled"] == 0
    assert ChangeRequest.objects.open().count() == 1


def test_the_application_of_create_lines(admin_unistra, unistra, smile, versions, settings):
    other = Application.objects.create(name="Moodle", slug="moodle")
    ApplicationVersion.objects.create(application=other, version="4.1.0")
    line = f"C|unistra|4.1.0|{stamp(at())}"
    refused = import_instructions(ctx(admin_unistra), line, dry_run=True).as_dict()["lines"][0]
    assert refused["message"].startswith("No application for C lines: the catalogue has several")
    settings.PORTAL_INSTRUCTIONS_APPLICATION = "moodle"
    assert import_instructions(ctx(admin_unistra), line, dry_run=True).lines[0].status == "created"
    settings.PORTAL_INSTRUCTIONS_APPLICATION = ""
    chosen = import_instructions(ctx(admin_unistra), line, application=other)
    assert ChangeRequest.objects.get(pk=chosen.lines[0].request).application == other


def test_a_file_over_the_limits_imports_nothing(admin_unistra, instance_unistra, versions, settings):
    settings.PORTAL_INSTRUCTIONS_MAX_LINES = 3
    lines = "".join(f"U|smile-unistra|1.2.6|{stamp(at())}\n" for _ in range(4))
    with pytest.raises(InstructionFileError, match="The file has 4 lines, at most 3"):
        import_instructions(ctx(admin_unistra), lines)
    settings.PORTAL_INSTRUCTIONS_MAX_BYTES = 20
    with pytest.raises(InstructionFileError, match="too big"):
        import_instructions(ctx(admin_unistra), "# " + "x" * 30)
    assert ChangeRequest.objects.count() == 0


def test_export_round_trip_gives_only_unchanged(
    admin_unistra, admin_unicaen, maintainer, instance_unistra, instance_unicaen, unistra, smile, versions
):
    workflow.request_update(ctx(admin_unistra), instance_unistra, version=versions["1.2.6"], scheduled_for=at(2))
    workflow.request_create(
        ctx(admin_unistra),
        organisation=unistra,
        application=smile,
        slug="smile-new",
        version=versions["1.2.5"],
        scheduled_for=at(4, 9, 0),
    )
    approved = workflow.request_delete(ctx(admin_unicaen), instance_unicaen, scheduled_for=at(3, 8, 15))
    approved.approve(ctx(maintainer))
    workflow.request_backup(ctx(admin_unistra), instance_unistra)  # not a C/U/D line: never exported
    text = export_text(maintainer)
    assert text.splitlines()[2:] == [
        f"U|smile-unistra|1.2.6|{stamp(at(2))}",
        f"D|smile-unicaen||{stamp(at(3, 8, 15))}",
        f"C|smile-new|1.2.5|{stamp(at(4, 9, 0))}",
    ]
    assert "smile-unicaen" not in export_text(admin_unistra)
    count = ChangeRequest.objects.count()
    report = import_instructions(ctx(maintainer), text)
    assert [line.status for line in report.lines] == ["unchanged"] * 3
    mine = import_instructions(ctx(admin_unistra), export_text(admin_unistra))
    assert [line.status for line in mine.lines] == ["unchanged"] * 2
    assert ChangeRequest.objects.count() == count


def test_a_stored_report_keeps_its_messages_to_translate(admin_unistra, instance_unistra, versions):
    report = import_instructions(
        ctx(admin_unistra), f"X|smile-unistra|1.2.6|01/01/2030-10:00\nU|smile-unistra|1.2.6|{stamp(at(-1))}"
    )
    stored = ImportReport.from_json(report.as_json())
    assert stored.as_dict() == report.as_dict()
    assert report.as_json()["lines"][0]["message_i18n"] == {
        "text": "Unknown action “%(action)s”: use C (create), U (update) or D (delete).",
        "params": {"action": "X"},
    }
    warning = report.as_json()["lines"][1]["warning_i18n"]
    assert warning["text"] == "%(when)s is past: the request is due as soon as it is approved."
