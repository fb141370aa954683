"""The browser UI: access rules, forms and their errors, review actions, lists, translation and query counts."""

import datetime
import html
import zoneinfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.models import AuditEvent
from instances import workflow
from instances.choices import InstanceStatus, RequestKind, RequestSource, RequestStatus
from instances.models import Application, ApplicationVersion, ChangeRequest, Instance
from tests.conftest import ctx

pytestmark = pytest.mark.django_db

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


@pytest.fixture(autouse=True)
def _paris(settings):
    # The schedule assertions below are written in the portal's default time zone.
    settings.TIME_ZONE = "Europe/Paris"


@pytest.fixture
def pending_update(instance_unistra, admin_unistra, versions):
    """An upgrade of smile-unistra filed by its functional admin, waiting for review."""
    return workflow.request_update(ctx(admin_unistra), instance_unistra, version=versions["1.2.6"])


@pytest.fixture
def pending_unicaen(instance_unicaen, admin_unicaen, versions):
    return workflow.request_update(ctx(admin_unicaen), instance_unicaen, version=versions["1.2.6"])


def page(response) -> str:
    return response.content.decode()


def future_local(days=3, hour=14, minute=30) -> datetime.datetime:
    """A wall-clock time in Paris a few days ahead (never inside a DST gap at 14:30)."""
    day = timezone.localdate(timezone.now(), PARIS) + datetime.timedelta(days=days)
    return datetime.datetime.combine(day, datetime.time(hour, minute))


def next_spring_forward() -> datetime.date:
    """The next last Sunday of March, when 02:00-03:00 does not exist in Paris."""
    today = timezone.localdate(timezone.now(), PARIS)
    for year in (today.year, today.year + 1):
        day = datetime.date(year, 3, 31)
        day -= datetime.timedelta(days=(day.weekday() - 6) % 7)
        if day > today:
            return day
    raise AssertionError("unreachable")


# --- anonymous users -----------------------------------------------------------------------------------------

INSTANCE_PAGES = ["instance_detail", "request_update", "request_delete", "request_backup"]
REQUEST_PAGES = ["request_detail"]
REQUEST_ACTIONS = ["request_approve", "request_reject", "request_cancel"]


@pytest.mark.parametrize(
    "url_name",
    ["home", "audit_list", "instances:instance_list", "instances:request_create", "instances:request_list"],
)
def test_anonymous_is_sent_to_login_from_lists(client, url_name):
    response = client.get(reverse(url_name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login") + "?next=")


@pytest.mark.parametrize("url_name", INSTANCE_PAGES)
def test_anonymous_is_sent_to_login_from_instance_pages(client, instance_unistra, url_name):
    for method in (client.get, client.post):
        response = method(reverse(f"instances:{url_name}", args=[instance_unistra.slug]))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))
    assert not ChangeRequest.objects.exists()


@pytest.mark.parametrize("url_name", REQUEST_PAGES + REQUEST_ACTIONS)
def test_anonymous_is_sent_to_login_from_request_pages(client, pending_update, url_name):
    response = client.post(reverse(f"instances:{url_name}", args=[pending_update.pk]), {"reason": "x"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    pending_update.refresh_from_db()
    assert pending_update.status == RequestStatus.SUBMITTED


# --- tenancy: another organisation's objects answer 404 ------------------------------------------------------


@pytest.mark.parametrize("url_name", INSTANCE_PAGES)
def test_other_organisations_instance_is_not_found(client, admin_unicaen, instance_unistra, url_name):
    client.force_login(admin_unicaen)
    url = reverse(f"instances:{url_name}", args=[instance_unistra.slug])
    assert client.get(url).status_code == 404
    if url_name != "instance_detail":  # the instance page itself is GET-only
        assert client.post(url, {"confirm_slug": instance_unistra.slug}).status_code == 404
    assert not ChangeRequest.objects.exists()


@pytest.mark.parametrize("url_name", REQUEST_PAGES + REQUEST_ACTIONS)
def test_other_organisations_request_is_not_found(client, admin_unicaen, pending_update, url_name):
    client.force_login(admin_unicaen)
    response = client.post(reverse(f"instances:{url_name}", args=[pending_update.pk]), {"reason": "mine now"})
    assert response.status_code in (404, 405)  # the detail page itself is GET-only
    assert client.get(reverse("instances:request_detail", args=[pending_update.pk])).status_code == 404
    pending_update.refresh_from_db()
    assert pending_update.status == RequestStatus.SUBMITTED


def test_lists_show_only_the_users_organisations(client, admin_unistra, pending_update, pending_unicaen):
    client.force_login(admin_unistra)
    fleet = page(client.get(reverse("instances:instance_list")))
    assert "smile-unistra" in fleet
    assert "smile-unicaen" not in fleet
    requests = page(client.get(reverse("instances:request_list")))
    assert f"#{pending_update.pk}<" in requests
    assert f"#{pending_unicaen.pk}<" not in requests
    home = page(client.get(reverse("home")))
    assert "smile-unistra" in home
    assert "smile-unicaen" not in home
    # The organisation filter offers only the user's organisations.
    assert "Université de Caen" not in fleet


def test_filtering_on_another_organisation_reveals_nothing(client, admin_unistra, instance_unistra, instance_unicaen):
    client.force_login(admin_unistra)
    response = client.get(reverse("instances:instance_list"), {"organisation": "unicaen"})
    assert response.status_code == 200
    assert "smile-unicaen" not in page(response)


# --- viewers see but cannot request --------------------------------------------------------------------------


def test_viewer_sees_the_instance_without_action_buttons(client, viewer_unistra, instance_unistra, pending_update):
    client.force_login(viewer_unistra)
    response = client.get(instance_unistra.get_absolute_url())
    assert response.status_code == 200
    assert "smile-unistra.apps.example.org" in page(response)
    assert reverse("instances:request_update", args=[instance_unistra.slug]) not in page(response)
    assert f"#{pending_update.pk}" in page(response)
    detail = client.get(pending_update.get_absolute_url())
    assert detail.status_code == 200
    assert reverse("instances:request_cancel", args=[pending_update.pk]) not in page(detail)
    home = page(client.get(reverse("home")))
    assert reverse("instances:request_create") not in home


@pytest.mark.parametrize("url_name", ["request_update", "request_delete", "request_backup"])
def test_viewer_cannot_request_changes_to_an_instance(client, viewer_unistra, instance_unistra, versions, url_name):
    client.force_login(viewer_unistra)
    url = reverse(f"instances:{url_name}", args=[instance_unistra.slug])
    assert client.get(url).status_code == 403
    response = client.post(url, {"version": versions["1.2.6"].pk, "confirm_slug": instance_unistra.slug})
    assert response.status_code == 403
    assert not ChangeRequest.objects.exists()


def test_viewer_cannot_request_an_instance(client, viewer_unistra, unistra, smile, versions):
    client.force_login(viewer_unistra)
    assert client.get(reverse("instances:request_create")).status_code == 403
    response = client.post(
        reverse("instances:request_create"),
        {"organisation": "unistra", "application": "smile", "slug": "new-one", "version": versions["1.2.6"].pk},
    )
    assert response.status_code == 403
    assert not ChangeRequest.objects.exists()


def test_viewer_cannot_cancel_someone_elses_request(client, viewer_unistra, pending_update):
    client.force_login(viewer_unistra)
    response = client.post(reverse("instances:request_cancel", args=[pending_update.pk]))
    assert response.status_code == 403
    pending_update.refresh_from_db()
    assert pending_update.status == RequestStatus.SUBMITTED


# --- review: only maintainers, never their own requests ------------------------------------------------------


def test_functional_admin_cannot_approve_or_reject(client, admin_unistra, pending_update):
    client.force_login(admin_unistra)
    detail = page(client.get(pending_update.get_absolute_url()))
    assert reverse("instances:request_approve", args=[pending_update.pk]) not in detail
    assert reverse("instances:request_reject", args=[pending_update.pk]) not in detail
    assert client.post(reverse("instances:request_approve", args=[pending_update.pk])).status_code == 403
    response = client.post(reverse("instances:request_reject", args=[pending_update.pk]), {"reason": "no"})
    assert response.status_code == 403
    pending_update.refresh_from_db()
    assert pending_update.status == RequestStatus.SUBMITTED


def test_maintainer_approves_another_users_request(client, maintainer, pending_update):
    client.force_login(maintainer)
    detail = page(client.get(pending_update.get_absolute_url()))
    assert reverse("instances:request_approve", args=[pending_update.pk]) in detail
    response = client.post(
        reverse("instances:request_approve", args=[pending_update.pk]), {"comment": "Go ahead on Monday"}
    )
    assert response.status_code == 302
    assert response["Location"] == pending_update.get_absolute_url()
    pending_update.refresh_from_db()
    assert pending_update.status == RequestStatus.APPROVED
    assert pending_update.reviewer == maintainer
    event = AuditEvent.objects.get(action="request.approved", target_id=str(pending_update.pk))
    assert event.actor == maintainer
    assert event.reason == "Go ahead on Monday"
    followed = page(client.get(response["Location"]))
    assert f"Request #{pending_update.pk} is approved." in followed


def test_maintainer_cannot_review_their_own_request(client, maintainer, instance_unistra, versions):
    own = workflow.request_update(ctx(maintainer), instance_unistra, version=versions["1.2.5"])
    client.force_login(maintainer)
    detail = page(client.get(own.get_absolute_url()))
    assert reverse("instances:request_approve", args=[own.pk]) not in detail
    assert "another maintainer must review it" in detail
    response = client.post(reverse("instances:request_approve", args=[own.pk]))
    assert response.status_code == 403
    assert "another maintainer must" in page(response)
    assert client.post(reverse("instances:request_reject", args=[own.pk]), {"reason": "x"}).status_code == 403
    own.refresh_from_db()
    assert own.status == RequestStatus.SUBMITTED


def test_reject_without_reason_shows_the_error_and_changes_nothing(client, maintainer, pending_update):
    client.force_login(maintainer)
    response = client.post(reverse("instances:request_reject", args=[pending_update.pk]), {"reason": "   "})
    assert response.status_code == 200
    assert "Say why the request is rejected." in page(response)
    assert "is-invalid" in page(response)
    pending_update.refresh_from_db()
    assert pending_update.status == RequestStatus.SUBMITTED


def test_reject_with_a_reason(client, maintainer, pending_update):
    client.force_login(maintainer)
    response = client.post(
        reverse("instances:request_reject", args=[pending_update.pk]), {"reason": "Exams week, pick later."}
    )
    assert response.status_code == 302
    pending_update.refresh_from_db()
    assert pending_update.status == RequestStatus.REJECTED
    assert pending_update.reason == "Exams week, pick later."


def test_review_actions_are_post_only(client, maintainer, pending_update):
    client.force_login(maintainer)
    for name in REQUEST_ACTIONS:
        assert client.get(reverse(f"instances:{name}", args=[pending_update.pk])).status_code == 405
    pending_update.refresh_from_db()
    assert pending_update.status == RequestStatus.SUBMITTED


def test_approving_a_request_that_moved_on_is_reported_not_a_crash(client, maintainer, maintainer2, pending_update):
    pending_update.approve(ctx(maintainer2))
    client.force_login(maintainer)
    response = client.post(reverse("instances:request_approve", args=[pending_update.pk]), follow=True)
    assert response.status_code == 200
    assert "cannot become" in page(response)
    assert AuditEvent.objects.filter(action="request.approved", target_id=str(pending_update.pk)).count() == 1


def test_requester_cancels_their_request(client, admin_unistra, pending_update):
    client.force_login(admin_unistra)
    assert reverse("instances:request_cancel", args=[pending_update.pk]) in page(
        client.get(pending_update.get_absolute_url())
    )
    response = client.post(reverse("instances:request_cancel", args=[pending_update.pk]), {"reason": "Wrong date"})
    assert response.status_code == 302
    pending_update.refresh_from_db()
    assert pending_update.status == RequestStatus.CANCELLED
    # Cancelling twice is refused with a message, not an error page.
    again = client.post(reverse("instances:request_cancel", args=[pending_update.pk]), follow=True)
    assert again.status_code == 200
    assert "cannot become" in page(again)


def test_request_detail_shows_the_timeline(client, maintainer, pending_update):
    pending_update.approve(ctx(maintainer))
    client.force_login(maintainer)
    detail = page(client.get(pending_update.get_absolute_url()))
    timeline = detail.split('class="timeline')[1]
    assert timeline.index("Submitted") < timeline.index("Approved")
    assert "admin-unistra" in timeline
    assert "1.2.4 → <strong>1.2.6</strong>" in detail


# --- requesting an instance ----------------------------------------------------------------------------------


def create_data(versions, **overrides):
    data = {
        "organisation": "unistra",
        "application": "smile",
        "slug": "smile-test",
        "version": versions["1.2.6"].pk,
        "scheduled_date": "",
        "scheduled_time": "",
        "comment": "",
    }
    data.update(overrides)
    return data


def test_request_an_instance(client, admin_unistra, versions):
    client.force_login(admin_unistra)
    when = future_local()
    response = client.post(
        reverse("instances:request_create"),
        create_data(
            versions,
            scheduled_date=when.date().isoformat(),
            scheduled_time=when.strftime("%H:%M"),
            comment="For the spring term",
        ),
    )
    request = ChangeRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == request.get_absolute_url()
    assert request.kind == RequestKind.CREATE
    assert request.source == RequestSource.WEB
    assert request.status == RequestStatus.SUBMITTED
    assert request.proposed_slug == "smile-test"
    assert request.requested_by == admin_unistra
    assert request.comment == "For the spring term"
    # The wall-clock time typed is the portal's time zone, whatever the server runs in.
    assert request.scheduled_for == when.replace(tzinfo=PARIS)


def test_the_only_organisation_is_not_offered_as_a_choice(client, admin_unistra, versions):
    client.force_login(admin_unistra)
    form = page(client.get(reverse("instances:request_create")))
    assert 'type="hidden" name="organisation" value="unistra"' in form
    assert "SMILE 1.2.6" in form


def test_cannot_request_for_an_organisation_one_does_not_administer(client, admin_unistra, unicaen, versions):
    client.force_login(admin_unistra)
    response = client.post(reverse("instances:request_create"), create_data(versions, organisation="unicaen"))
    assert response.status_code == 200
    assert "Select a valid choice" in page(response)
    assert not ChangeRequest.objects.exists()


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("Smile-Test", "Use lowercase letters"),
        ("-smile", "Use lowercase letters"),
        ("smile-", "Use lowercase letters"),
        ("a" * 41, "at most 40 characters"),
        ("smile_test", "Use lowercase letters"),
        ("", "This field is required"),
    ],
)
def test_bad_instance_names_are_form_errors(client, admin_unistra, versions, slug, message):
    client.force_login(admin_unistra)
    response = client.post(reverse("instances:request_create"), create_data(versions, slug=slug))
    assert response.status_code == 200
    assert message in page(response)
    assert not ChangeRequest.objects.exists()


def test_duplicate_instance_name_is_a_form_error(client, admin_unistra, instance_unistra, versions):
    client.force_login(admin_unistra)
    response = client.post(reverse("instances:request_create"), create_data(versions, slug="smile-unistra"))
    assert response.status_code == 200
    assert "An instance named smile-unistra already exists." in page(response)
    assert not ChangeRequest.objects.exists()


def test_name_already_requested_is_a_form_error(client, admin_unistra, versions):
    client.force_login(admin_unistra)
    client.post(reverse("instances:request_create"), create_data(versions))
    first = ChangeRequest.objects.get()
    response = client.post(reverse("instances:request_create"), create_data(versions))
    assert response.status_code == 200
    assert f"Request #{first.pk} already asks for an instance named smile-test." in page(response)
    assert ChangeRequest.objects.count() == 1


def test_past_schedule_is_a_form_error(client, admin_unistra, versions):
    client.force_login(admin_unistra)
    past = future_local(days=-2)
    response = client.post(
        reverse("instances:request_create"),
        create_data(versions, scheduled_date=past.date().isoformat(), scheduled_time="10:00"),
    )
    assert response.status_code == 200
    assert "Choose a date and time in the future." in page(response)
    assert not ChangeRequest.objects.exists()


def test_time_in_the_spring_forward_gap_is_a_form_error(client, admin_unistra, versions):
    client.force_login(admin_unistra)
    response = client.post(
        reverse("instances:request_create"),
        create_data(versions, scheduled_date=next_spring_forward().isoformat(), scheduled_time="02:30"),
    )
    assert response.status_code == 200
    assert "does not exist" in page(response)
    assert not ChangeRequest.objects.exists()


@pytest.mark.parametrize(
    ("date", "time", "message"),
    [
        ("", "10:00", "Give the date as well as the time."),
        ("2030-01-01", "", "Give the time as well as the date."),
        ("not-a-date", "10:00", "Enter a valid date."),
        ("2030-01-01", "25:99", "Enter a valid time."),
        ("0001-01-01", "00:30", "Choose a date and time in the future."),
    ],
)
def test_incomplete_or_invalid_schedule_is_a_form_error(client, admin_unistra, versions, date, time, message):
    client.force_login(admin_unistra)
    response = client.post(
        reverse("instances:request_create"), create_data(versions, scheduled_date=date, scheduled_time=time)
    )
    assert response.status_code == 200
    assert message in page(response)
    assert not ChangeRequest.objects.exists()


def test_version_of_another_application_is_refused(client, admin_unistra, versions):
    other = Application.objects.create(name="Other", slug="other", kustomize_base="other")
    foreign = ApplicationVersion.objects.create(application=other, version="9.0")
    client.force_login(admin_unistra)
    response = client.post(reverse("instances:request_create"), create_data(versions, version=foreign.pk))
    assert response.status_code == 200
    assert "9.0 is not a version of SMILE." in page(response)
    assert not ChangeRequest.objects.exists()


def test_garbage_input_never_fails(client, admin_unistra, versions):
    client.force_login(admin_unistra)
    response = client.post(
        reverse("instances:request_create"),
        {"organisation": "\x00", "application": ["a", "b"], "slug": "x\x00y", "version": "nope", "comment": "c" * 5000},
    )
    assert response.status_code == 200
    assert not ChangeRequest.objects.exists()


# --- upgrade, delete, backup ---------------------------------------------------------------------------------


def test_request_an_upgrade(client, admin_unistra, instance_unistra, versions):
    client.force_login(admin_unistra)
    form = page(client.get(reverse("instances:request_update", args=[instance_unistra.slug])))
    # Only versions newer than the current 1.2.4 are offered.
    assert ">SMILE 1.2.6</option>" in form
    assert ">SMILE 1.2.4</option>" not in form
    response = client.post(
        reverse("instances:request_update", args=[instance_unistra.slug]), {"version": versions["1.2.5"].pk}
    )
    request = ChangeRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == request.get_absolute_url()
    assert (request.kind, request.instance, request.target_version) == (
        RequestKind.UPDATE,
        instance_unistra,
        versions["1.2.5"],
    )
    assert request.source == RequestSource.WEB
    assert request.scheduled_for is None


@pytest.mark.parametrize("version", ["1.2.4", "1.2.5"])
def test_upgrade_to_a_version_that_is_not_newer_is_a_form_error(
    client, admin_unicaen, instance_unicaen, versions, version
):
    client.force_login(admin_unicaen)
    response = client.post(
        reverse("instances:request_update", args=[instance_unicaen.slug]), {"version": versions[version].pk}
    )
    assert response.status_code == 200
    assert "Choose an available version newer than the current one." in page(response)
    assert not ChangeRequest.objects.exists()


def test_upgrade_blocked_by_an_open_request_names_it(client, admin_unistra, instance_unistra, pending_update, versions):
    client.force_login(admin_unistra)
    url = reverse("instances:request_update", args=[instance_unistra.slug])
    assert f"Request #{pending_update.pk}" in page(client.get(url))
    response = client.post(url, {"version": versions["1.2.5"].pk})
    assert response.status_code == 200
    assert f"Request #{pending_update.pk} (Upgrade, Submitted) is already open for smile-unistra" in page(response)
    assert ChangeRequest.objects.count() == 1


def test_delete_needs_the_instance_name(client, admin_unistra, instance_unistra):
    client.force_login(admin_unistra)
    url = reverse("instances:request_delete", args=[instance_unistra.slug])
    assert "a final backup of the database is taken" in page(client.get(url))
    response = client.post(url, {"confirm_slug": "smile-unicaen"})
    assert response.status_code == 200
    assert "Type smile-unistra exactly to confirm the deletion." in page(response)
    assert not ChangeRequest.objects.exists()
    response = client.post(url, {"confirm_slug": "smile-unistra", "comment": "End of contract"})
    request = ChangeRequest.objects.get()
    assert response.status_code == 302
    assert (request.kind, request.instance, request.source) == (RequestKind.DELETE, instance_unistra, "web")


def test_backup_has_a_confirmation_page(client, admin_unistra, instance_unistra):
    client.force_login(admin_unistra)
    url = reverse("instances:request_backup", args=[instance_unistra.slug])
    confirm = client.get(url)
    assert confirm.status_code == 200
    assert "Back up now" in page(confirm)
    assert not ChangeRequest.objects.exists()
    response = client.post(url)
    request = ChangeRequest.objects.get()
    assert response.status_code == 302
    assert (request.kind, request.source) == (RequestKind.BACKUP, RequestSource.WEB)
    # On-demand backups need no approval by default.
    assert request.status == RequestStatus.APPROVED
    again = client.post(url)
    assert again.status_code == 200
    assert "A backup of smile-unistra is already pending." in page(again)
    assert ChangeRequest.objects.count() == 1


def test_deleted_instance_offers_no_actions(client, admin_unistra, instance_unistra):
    Instance.objects.filter(pk=instance_unistra.pk).update(status=InstanceStatus.DELETED)
    client.force_login(admin_unistra)
    detail = page(client.get(instance_unistra.get_absolute_url()))
    assert reverse("instances:request_update", args=[instance_unistra.slug]) not in detail
    response = client.post(reverse("instances:request_backup", args=[instance_unistra.slug]))
    assert response.status_code == 200
    assert "is deleted or being deleted" in page(response)
    assert not ChangeRequest.objects.exists()


def test_instance_page_shows_requests_and_audit_events(client, admin_unistra, instance_unistra, pending_update):
    client.force_login(admin_unistra)
    detail = page(client.get(instance_unistra.get_absolute_url()))
    assert f"#{pending_update.pk}" in detail
    assert "request.submitted" in detail
    assert "Université de Strasbourg" in detail
    assert reverse("instances:request_delete", args=[instance_unistra.slug]) in detail


# --- lists ---------------------------------------------------------------------------------------------------


def test_maintainer_request_list_is_the_approval_queue(
    client, maintainer, maintainer2, pending_update, pending_unicaen
):
    pending_unicaen.approve(ctx(maintainer2))
    client.force_login(maintainer)
    queue = page(client.get(reverse("instances:request_list")))
    assert f"#{pending_update.pk}<" in queue
    assert f"#{pending_unicaen.pk}<" not in queue
    everything = page(client.get(reverse("instances:request_list"), {"status": ""}))
    assert f"#{pending_unicaen.pk}<" in everything
    by_org = page(client.get(reverse("instances:request_list"), {"status": "", "organisation": "unicaen"}))
    assert f"#{pending_update.pk}<" not in by_org
    assert f"#{pending_unicaen.pk}<" in by_org


def test_request_list_shows_conflicts(client, maintainer, admin_unistra, instance_unistra, versions, smile, unistra):
    upgrade = workflow.request_update(ctx(admin_unistra), instance_unistra, version=versions["1.2.5"])
    creation = workflow.request_create(
        ctx(admin_unistra), organisation=unistra, application=smile, slug="smile-two", version=versions["1.2.6"]
    )
    # Meanwhile the instance got 1.2.6 and someone made smile-two by hand.
    Instance.objects.filter(pk=instance_unistra.pk).update(current_version=versions["1.2.6"])
    Instance.objects.create(
        organisation=unistra, application=smile, slug="smile-two", hostname="two.example.org", status="running"
    )
    client.force_login(maintainer)
    queue = page(client.get(reverse("instances:request_list")))
    assert "1.2.5 is not newer than the current version 1.2.6 any more." in queue
    assert "An instance named smile-two already exists." in queue
    assert "1.2.6 → <strong>1.2.5</strong>" in queue
    assert upgrade.pk and creation.pk


def test_fleet_filters(client, maintainer, instance_unistra, instance_unicaen, versions):
    client.force_login(maintainer)
    url = reverse("instances:instance_list")
    assert "smile-unicaen" in page(client.get(url))
    by_org = page(client.get(url, {"organisation": "unistra"}))
    assert "smile-unistra" in by_org and "smile-unicaen" not in by_org
    by_version = page(client.get(url, {"version": versions["1.2.5"].pk}))
    assert "smile-unicaen" in by_version and "smile-unistra" not in by_version
    by_text = page(client.get(url, {"q": "UNICAEN"}))
    assert "smile-unicaen" in by_text and "smile-unistra" not in by_text
    by_status = page(client.get(url, {"status": "deleted"}))
    assert "smile-unicaen" not in by_status
    # Nonsense values are ignored and shown as filter errors, never a server error.
    weird = client.get(url, {"organisation": "nope", "version": "abc", "status": "zzz", "application": "\x00"})
    assert weird.status_code == 200
    assert "smile-unicaen" in page(weird)
    assert client.get(url, {"page": "999"}).status_code == 404


def test_fleet_is_paginated(client, maintainer, unistra, smile, versions):
    make_instances(unistra, smile, versions["1.2.4"], 60)
    client.force_login(maintainer)
    first = client.get(reverse("instances:instance_list"))
    assert len(first.context["instances"]) == 50
    assert "Page 1 of 2" in page(first)
    second = client.get(reverse("instances:instance_list"), {"page": 2})
    assert len(second.context["instances"]) == 10


def test_dashboard_for_a_functional_admin(client, admin_unistra, pending_update):
    client.force_login(admin_unistra)
    home = page(client.get(reverse("home")))
    assert reverse("instances:request_create") in home
    assert "smile-unistra" in home
    assert f"#{pending_update.pk} Upgrade" in home  # its last request
    assert "Open requests" in home


def test_dashboard_for_a_maintainer(client, maintainer, pending_update, instance_unicaen):
    client.force_login(maintainer)
    response = client.get(reverse("home"))
    assert response.context["awaiting_review_count"] == 1
    assert response.context["instance_total"] == 2
    assert [r.pk for r in response.context["queue"]] == [pending_update.pk]
    assert "Approval queue" in page(response)
    # The navigation badge counts the requests awaiting review.
    assert 'title="Requests awaiting review">1</span>' in page(response)


# --- audit page ----------------------------------------------------------------------------------------------


def test_audit_page_is_for_maintainers(client, admin_unistra, maintainer, pending_update):
    client.force_login(admin_unistra)
    assert client.get(reverse("audit_list")).status_code == 403
    client.force_login(maintainer)
    response = client.get(reverse("audit_list"))
    assert response.status_code == 200
    assert "request.submitted" in page(response)
    assert "admin-unistra" in page(response)


def test_audit_filters(client, maintainer, maintainer2, pending_update, pending_unicaen):
    pending_update.approve(ctx(maintainer2))
    client.force_login(maintainer)
    url = reverse("audit_list")
    approved = client.get(url, {"action": "request.approved"})
    assert [e.action for e in approved.context["events"]] == ["request.approved"]
    by_actor = client.get(url, {"actor": "unicaen"})
    assert {e.actor_label for e in by_actor.context["events"]} == {"admin-unicaen"}
    by_org = client.get(url, {"organisation": "unistra"})
    assert {e.organisation_id for e in by_org.context["events"]} == {pending_update.organisation_id}
    today = timezone.localdate().isoformat()
    assert len(client.get(url, {"since": today, "until": today}).context["events"]) == 3
    assert len(client.get(url, {"until": "2000-01-01"}).context["events"]) == 0
    assert client.get(url, {"since": "yesterday", "action": "\x00"}).status_code == 200


# --- translation ---------------------------------------------------------------------------------------------


def test_language_switch_to_french(client, admin_unistra, instance_unistra):
    client.force_login(admin_unistra)
    english = page(client.get(reverse("home")))
    assert "Dashboard" in english
    response = client.post(reverse("set_language"), {"language": "fr", "next": reverse("home")})
    assert response.status_code == 302
    french = html.unescape(page(client.get(reverse("home"))))
    assert '<html lang="fr">' in french
    assert "Tableau de bord" in french
    assert "Demander une instance" in french
    assert "En cours d\u2019exécution" in french  # the instance status, translated from the model choices
    assert "Dashboard" not in french


def test_dates_are_shown_in_the_portal_time_zone(client, maintainer, admin_unistra, instance_unistra, versions):
    when = datetime.datetime(2030, 10, 9, 12, 0, tzinfo=PARIS)
    request = ChangeRequest.objects.create(
        kind=RequestKind.UPDATE,
        organisation=instance_unistra.organisation,
        application=instance_unistra.application,
        instance=instance_unistra,
        target_version=versions["1.2.6"],
        scheduled_for=when.astimezone(datetime.UTC),
        requested_by=admin_unistra,
        requested_by_label="admin-unistra",
    )
    client.force_login(maintainer)
    client.post(reverse("set_language"), {"language": "fr"})
    assert "09/10/2030 12:00" in page(client.get(request.get_absolute_url()))


# --- the number of queries does not grow with the data ------------------------------------------------------


def make_instances(organisation, application, version, count, prefix="bulk"):
    start = Instance.objects.filter(slug__startswith=prefix).count()
    return Instance.objects.bulk_create(
        [
            Instance(
                organisation=organisation,
                application=application,
                slug=f"{prefix}-{n}",
                hostname=f"{prefix}-{n}.apps.example.org",
                current_version=version,
                status=InstanceStatus.RUNNING,
            )
            for n in range(start, start + count)
        ]
    )


def make_requests(instances, version, user, status=RequestStatus.SUBMITTED, kind=RequestKind.UPDATE):
    return ChangeRequest.objects.bulk_create(
        [
            ChangeRequest(
                kind=kind,
                organisation_id=instance.organisation_id,
                application_id=instance.application_id,
                instance=instance,
                target_version=version,
                status=status,
                requested_by=user,
                requested_by_label=user.username,
            )
            for instance in instances
        ]
    )


def count_queries(client, url) -> int:
    client.get(url)  # warm up: the first request may fill caches
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


QUERY_BOUND = 20


@pytest.mark.parametrize("who", ["admin", "maintainer"])
@pytest.mark.parametrize("url_name", ["home", "instances:instance_list", "instances:request_list"])
def test_lists_run_a_constant_number_of_queries(
    client, django_assert_max_num_queries, admin_unistra, maintainer, unistra, smile, versions, who, url_name
):
    client.force_login(admin_unistra if who == "admin" else maintainer)
    url = reverse(url_name)
    make_requests(make_instances(unistra, smile, versions["1.2.4"], 5), versions["1.2.6"], admin_unistra)
    few = count_queries(client, url)
    make_requests(make_instances(unistra, smile, versions["1.2.4"], 195), versions["1.2.6"], admin_unistra)
    with django_assert_max_num_queries(QUERY_BOUND):
        response = client.get(url)
    assert response.status_code == 200
    assert count_queries(client, url) == few


def test_instance_page_runs_a_constant_number_of_queries(
    client, django_assert_max_num_queries, admin_unistra, instance_unistra, unistra, smile, versions
):
    client.force_login(admin_unistra)
    url = instance_unistra.get_absolute_url()

    def add_history(count):
        done = make_requests(
            [instance_unistra] * count,
            None,
            admin_unistra,
            status=RequestStatus.SUCCEEDED,
            kind=RequestKind.BACKUP,
        )
        AuditEvent.objects.bulk_create(
            [
                AuditEvent(
                    actor=admin_unistra,
                    actor_label="admin-unistra",
                    action="request.succeeded",
                    organisation=unistra,
                    target_type="instances.changerequest",
                    target_id=str(request.pk),
                    target_label=str(request.pk),
                    before={"status": "running"},
                    after={"status": "succeeded"},
                )
                for request in done
            ]
        )
        make_instances(unistra, smile, versions["1.2.4"], count)

    add_history(5)
    few = count_queries(client, url)
    add_history(195)
    with django_assert_max_num_queries(QUERY_BOUND):
        response = client.get(url)
    assert len(response.context["requests"]) == 200
    assert count_queries(client, url) == few


def test_a_finished_upgrade_shows_its_target_not_the_current_version(
    client, maintainer, admin_unistra, instance_unistra, versions
):
    from instances import workflow
    from instances.choices import RequestStatus
    from instances.models import ChangeRequest, Instance
    from tests.conftest import ctx

    request = workflow.request_update(ctx(admin_unistra), instance_unistra, version=versions["1.2.6"])
    client.force_login(maintainer)
    assert "1.2.4 →" in client.get(request.get_absolute_url()).content.decode()
    ChangeRequest.objects.filter(pk=request.pk).update(status=RequestStatus.SUCCEEDED)
    Instance.objects.filter(pk=instance_unistra.pk).update(current_version=versions["1.2.6"])
    page = client.get(request.get_absolute_url()).content.decode()
    assert "1.2.6 →" not in page
    assert "<strong>1.2.6</strong>" in page


def test_an_instance_being_deleted_offers_no_request(client, admin_unistra, instance_unistra):
    from instances.choices import InstanceStatus
    from instances.models import Instance

    Instance.objects.filter(pk=instance_unistra.pk).update(status=InstanceStatus.DELETING)
    client.force_login(admin_unistra)
    page = client.get(instance_unistra.get_absolute_url()).content.decode()
    assert f"/instances/{instance_unistra.slug}/upgrade/" not in page
    assert f"/instances/{instance_unistra.slug}/delete/" not in page
