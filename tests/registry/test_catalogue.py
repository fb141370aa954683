"""The version catalogue: which registry tags become versions of an application (release pattern, every component
holds the tag), and which of them may be deployed (the application's scan policy)."""

import pytest

from instances.catalogue import refresh_versions
from instances.choices import VersionSource
from instances.models import ApplicationVersion
from registry import catalogue
from registry.choices import ScanStatus
from registry.models import ImageTag, Registry
from registry.policy import ScanPolicy
from registry.sync import sync_registry
from tests.registry.conftest import map_components

pytestmark = pytest.mark.django_db


def registry_versions(application) -> dict[str, ApplicationVersion]:
    rows = ApplicationVersion.objects.filter(application=application, source=VersionSource.REGISTRY)
    return {v.version: v for v in rows}


@pytest.fixture
def smile_in_registry(server, local, smile, namespace):
    """core holds 1.2.4, 1.2.5, 1.2.6 and a branch build; nginx the same but 1.2.6. Returns the pushed digests."""
    repositories = map_components(smile, local, namespace)
    digests = {}
    for component, tags in (
        ("core", ["1.2.4", "1.2.5", "1.2.6", "feature-x"]),
        ("nginx", ["1.2.4", "1.2.5", "feature-x"]),
    ):
        for tag in tags:
            digests[component, tag] = server.push(
                repositories[component].path, tag, payload=f"{component}:{tag}".encode()
            )
    return repositories, digests


def test_versions_are_the_release_tags_every_component_holds(smile, local, smile_in_registry):
    repositories, digests = smile_in_registry

    sync_registry(local)

    versions = registry_versions(smile)
    assert sorted(versions) == ["1.2.4", "1.2.5"]  # 1.2.6 lacks nginx; feature-x is no release
    assert ApplicationVersion.objects.filter(application=smile).count() == 2
    for name, version in versions.items():
        assert version.is_available
        assert version.images == {
            f"smile-{component}": {
                "repository": repositories[component].reference,
                "tag": name,
                "digest": digests[component, name],
            }
            for component in ("core", "nginx")
        }
        # A registry without a scanner and an application that wants scans: nothing can be deployed.
        assert not version.deployable
        assert {b["component"]: b["code"] for b in version.blockers} == {"core": "not_scanned", "nginx": "not_scanned"}


def test_a_custom_release_pattern_admits_release_candidates(server, local, smile, smile_in_registry):
    repositories, _digests = smile_in_registry
    for repo in repositories.values():
        server.push(repo.path, "1.3.0-rc1", payload=f"{repo.path}:rc".encode())
    smile.release_pattern = r"^\d+\.\d+\.\d+(-rc\d+)?$"
    smile.save()

    sync_registry(local)

    assert sorted(registry_versions(smile)) == ["1.2.4", "1.2.5", "1.3.0-rc1"]


def test_a_pattern_matching_a_branch_build_still_makes_no_version_of_it(local, smile, smile_in_registry):
    smile.release_pattern = r".*"
    smile.save()

    sync_registry(local)

    # feature-x matches the pattern and both components hold it, but it is no version string.
    assert sorted(registry_versions(smile)) == ["1.2.4", "1.2.5"]


def test_a_tag_gone_from_the_registry_makes_its_version_unavailable(server, local, smile, smile_in_registry):
    repositories, digests = smile_in_registry
    sync_registry(local)
    if not server.delete(repositories["nginx"].path, digests["nginx", "1.2.4"]):
        pytest.skip("this registry does not allow deleting manifests")

    sync_registry(local)

    versions = registry_versions(smile)
    assert (versions["1.2.4"].is_available, versions["1.2.5"].is_available) == (False, True)
    assert list(ApplicationVersion.objects.filter(application=smile).available()) == [versions["1.2.5"]]


# --- scans: tags written directly, the catalogue refreshed ------------------------------------------------------


@pytest.fixture
def scanned(smile, namespace):
    """SMILE mapped onto a registry the test never calls, with tags 1.2.4 and 1.2.5 on both components, scanned
    clean."""
    offline = Registry.objects.create(name="offline", kind="harbor", url="https://harbor.example.org")
    repositories = map_components(smile, offline, namespace)
    for index, repo in enumerate(repositories.values()):
        for n, tag in enumerate(("1.2.4", "1.2.5")):
            digest = f"sha256:{index * 10 + n:064x}"
            ImageTag.objects.create(
                repository=repo, tag=tag, digest=digest, first_digest=digest, scan_status=ScanStatus.PASSED,
                vulnerability_counts={"low": n}, vulnerabilities=[{"id": "CVE-2020-0001", "severity": "low"}][:n],
            )  # fmt: skip
    return repositories


def set_scan(repo, tag, status, vulnerabilities=()):
    counts = {}
    for _vid, severity in vulnerabilities:
        counts[severity] = counts.get(severity, 0) + 1
    ImageTag.objects.filter(repository=repo, tag=tag).update(
        scan_status=status,
        vulnerability_counts=counts,
        vulnerabilities=[{"id": vid, "severity": severity} for vid, severity in vulnerabilities],
    )


def test_deployable_and_blocked_versions_name_the_component_and_the_cves(smile, scanned):
    set_scan(scanned["nginx"], "1.2.5", ScanStatus.FAILED, [("CVE-2024-1111", "critical"), ("CVE-2024-2222", "high")])

    assert refresh_versions(smile) == (2, 1)

    versions = registry_versions(smile)
    assert (versions["1.2.4"].deployable, versions["1.2.4"].blockers) == (True, [])
    assert not versions["1.2.5"].deployable
    assert versions["1.2.5"].blockers == [
        {"component": "nginx", "code": "vulnerable", "count": 1, "block_at": "critical", "cves": ["CVE-2024-1111"]}
    ]
    assert versions["1.2.5"].blocker_lines == ["nginx: 1 vulnerability at Critical (CVE-2024-1111)"]
    assert list(ApplicationVersion.objects.filter(application=smile).deployable()) == [versions["1.2.4"]]


def test_a_stricter_policy_blocks_more_and_quotes_every_blocking_cve(smile, scanned):
    set_scan(scanned["core"], "1.2.4", ScanStatus.PASSED, [("CVE-2024-3333", "high"), ("CVE-2024-4444", "low")])
    smile.scan_block_at = "high"
    smile.save()

    refresh_versions(smile)

    blockers = registry_versions(smile)["1.2.4"].blockers
    assert blockers == [
        {"component": "core", "code": "vulnerable", "count": 1, "block_at": "high", "cves": ["CVE-2024-3333"]}
    ]


def test_a_version_blocked_then_fixed_becomes_deployable_again(smile, scanned):
    set_scan(scanned["core"], "1.2.4", ScanStatus.PENDING)
    refresh_versions(smile)
    assert registry_versions(smile)["1.2.4"].blockers[0]["code"] == "pending"

    set_scan(scanned["core"], "1.2.4", ScanStatus.PASSED)
    refresh_versions(smile)

    version = registry_versions(smile)["1.2.4"]
    assert (version.deployable, version.blockers) == (True, [])


@pytest.mark.parametrize(("allow", "deployable"), [(False, False), (True, True)])
def test_allow_not_scanned(smile, scanned, allow, deployable):
    for repo in scanned.values():
        set_scan(repo, "1.2.4", ScanStatus.NOT_SCANNED)
    smile.allow_not_scanned = allow
    smile.save()

    refresh_versions(smile)

    version = registry_versions(smile)["1.2.4"]
    assert version.deployable is deployable
    expected = [] if allow else ["core", "nginx"]
    assert [b["component"] for b in version.blockers] == expected
    assert (version in ApplicationVersion.objects.deployable()) is deployable


def test_allow_not_scanned_does_not_admit_a_pending_scan(smile, scanned):
    set_scan(scanned["core"], "1.2.4", ScanStatus.PENDING)
    smile.allow_not_scanned = True
    smile.save()

    refresh_versions(smile)

    assert not registry_versions(smile)["1.2.4"].deployable


def test_a_tag_marked_absent_makes_the_version_unavailable_and_back(smile, scanned):
    refresh_versions(smile)
    ImageTag.objects.filter(repository=scanned["core"], tag="1.2.5").update(present=False)

    assert refresh_versions(smile) == (1, 1)
    assert not registry_versions(smile)["1.2.5"].is_available
    assert "1.2.5" not in {v.version for v in ApplicationVersion.objects.deployable()}

    ImageTag.objects.filter(repository=scanned["core"], tag="1.2.5").update(present=True)
    refresh_versions(smile)
    assert registry_versions(smile)["1.2.5"].is_available


def test_a_manual_version_is_left_alone(smile, scanned):
    manual = ApplicationVersion.objects.create(application=smile, version="1.0.0")

    refresh_versions(smile)

    manual.refresh_from_db()
    assert (manual.source, manual.is_available) == (VersionSource.MANUAL, True)


# --- the catalogue's query count --------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [2, 20])
def test_versions_read_the_registry_rows_in_one_query(smile, scanned, count, django_assert_num_queries):
    for repo in scanned.values():
        for patch in range(count):
            digest = f"sha256:{patch + 100:064x}"
            ImageTag.objects.create(repository=repo, tag=f"2.0.{patch}", digest=digest, first_digest=digest)
    components = {component: repo.pk for component, repo in scanned.items()}

    with django_assert_num_queries(1):
        found = catalogue.versions(components, r"^\d+\.\d+\.\d+$", ScanPolicy())
        images = [entry.images() for entry in found]

    assert len(found) == count + 2
    assert images[-1]["core"]["repository"] == scanned["core"].reference


def test_no_component_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert catalogue.versions({}, r".*", ScanPolicy()) == []
