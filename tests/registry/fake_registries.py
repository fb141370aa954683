"""A fake Quay and a fake Harbor on 127.0.0.1, for the registry client tests.

One :class:`FakeRegistry` answers both APIs (their paths do not overlap) over real HTTP, so that the clients'
sessions, timeouts, authentication and URL encoding are exercised for real. The answers follow the shapes of the
vendors' API documentation (Quay API v1, Harbor API v2.0); only the fields the portal could care about, and a few
it should ignore, are filled in.

A test scripts it: the tags (Quay) or artifacts (Harbor) of each repository with their scans, the credentials it
requires (:attr:`FakeRegistry.bearer`, :attr:`FakeRegistry.basic`), the largest page it gives
(:attr:`FakeRegistry.max_page_size`) and queues of :class:`Fault` for some paths. It records every request it
receives (:attr:`FakeRegistry.requests`) so that tests can check what the clients sent.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import email.utils
import fnmatch
import json
import re
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

HARBOR_REPORT_TYPE = "application/vnd.security.vulnerability.report; version=1.1"
# Both registries cap a page at 100 entries whatever the client asks for.
DOCUMENTED_MAX_PAGE_SIZE = 100
EPOCH = datetime.datetime(2024, 3, 1, 10, 0, tzinfo=datetime.UTC)


@dataclasses.dataclass(frozen=True)
class Vulnerability:
    """One finding of a scanner: a CVE in one package. The same CVE may be found in several packages."""

    id: str
    severity: str  # as the scanner spells it: "Critical", "High", "Defcon1", "Negligible"...
    package: str = "openssl"
    version: str = "3.0.11-1~deb12u2"


@dataclasses.dataclass(frozen=True)
class HarborScan:
    """The scan of a Harbor artifact: Harbor's ``scan_status`` and, once it is "Success", what was found."""

    status: str = "Success"  # Success, Pending, Running, Scheduled, Error, Stopped
    vulnerabilities: tuple[Vulnerability, ...] = ()


@dataclasses.dataclass
class Fault:
    """A misbehaviour for one request, taken from a path's queue (see :meth:`FakeRegistry.inject`).

    ``status`` answers that HTTP status (with the API's error body) instead of the normal answer; ``retry_after``
    adds that header; ``malformed`` answers 200 with a truncated JSON body; ``delay`` waits that many seconds
    before answering (normally, unless another field says otherwise).
    """

    status: int | None = None
    retry_after: str | None = None
    malformed: bool = False
    delay: float = 0.0


@dataclasses.dataclass(frozen=True)
class Received:
    """A request as the fake received it. ``path`` is the raw path, still percent-encoded as sent."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased


@dataclasses.dataclass
class _QuayTag:
    name: str
    digest: str
    last_modified: datetime.datetime
    size: int | None
    active: bool


@dataclasses.dataclass
class _HarborArtifact:
    digest: str
    tags: tuple[str, ...]
    push_time: datetime.datetime
    size: int
    scan: HarborScan | None


def quay_security(status: str = "scanned", vulnerabilities: tuple[Vulnerability, ...] | list = ()) -> dict:
    """Quay's getManifestSecurity answer: a status and, once "scanned", the image's packages with their CVEs.

    Quay (Clair) groups the findings by package ("Features"): a CVE found in two packages appears under both.
    """
    if status != "scanned":
        return {"status": status, "data": None}
    features: dict[tuple[str, str], list[dict]] = {}
    for vulnerability in vulnerabilities:
        features.setdefault((vulnerability.package, vulnerability.version), []).append(
            {
                "Name": vulnerability.id,
                "Severity": vulnerability.severity,
                "NamespaceName": "debian:12",
                "Link": f"https://security-tracker.debian.org/tracker/{vulnerability.id}",
                "Description": "",
                "FixedBy": "",
                "Metadata": {},
            }
        )
    return {
        "status": "scanned",
        "data": {
            "Layer": {
                "Name": "sha256:layer",
                "ParentName": "",
                "NamespaceName": "",
                "IndexedByVersion": 4,
                "Features": [
                    {
                        "Name": package,
                        "Version": version,
                        "VersionFormat": "dpkg",
                        "NamespaceName": "debian:12",
                        "AddedBy": "sha256:layer",
                        "BaseScores": [],
                        "CVEIds": [],
                        "Vulnerabilities": found,
                    }
                    for (package, version), found in features.items()
                ]
                # A package without vulnerability is listed too.
                + [{"Name": "tzdata", "Version": "2024a-0+deb12u1", "VersionFormat": "dpkg", "Vulnerabilities": []}],
            }
        },
    }


def _quay_date(when: datetime.datetime) -> str:
    # Quay formats its dates with email.utils.formatdate in UTC, which writes the zone as "-0000".
    return email.utils.formatdate(when.timestamp())


def _harbor_date(when: datetime.datetime) -> str:
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class FakeRegistry:
    """Quay API v1 and Harbor API v2.0, scripted by the test. Use as a context manager (it starts and stops)."""

    def __init__(self):
        self.bearer: str | None = None  # a token every request must carry (Quay's OAuth / robot token)
        self.basic: tuple[str, str] | None = None  # the credentials every request must carry (Harbor's robot)
        self.max_page_size = DOCUMENTED_MAX_PAGE_SIZE
        # Harbor before the fix of goharbor/harbor#17443 answered 200 [] for an unknown repository of a known
        # project; True reproduces that.
        self.harbor_empty_unknown_repository = False
        self.quay_tags: dict[str, list[_QuayTag]] = {}
        self.quay_scans: dict[str, dict | None] = {}  # digest -> getManifestSecurity answer (None: 404)
        self.harbor_projects: set[str] = set()
        self.harbor_artifacts: dict[str, list[_HarborArtifact]] = {}
        self._faults: dict[str, deque[Fault]] = {}
        self._requests: list[Received] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- life ------------------------------------------------------------------------------------------------

    def start(self) -> FakeRegistry:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        # A short poll so that stop() (which waits for the next poll) costs each test little.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-registry", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()  # wakes the handlers sleeping on a delay fault
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeRegistry:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- scripting -------------------------------------------------------------------------------------------

    def add_quay_tag(
        self,
        repository: str,
        name: str,
        digest: str,
        *,
        last_modified: datetime.datetime = EPOCH,
        size: int | None = 1000,
        active: bool = True,
        security: dict | None = None,
    ) -> None:
        """A tag of a Quay repository ("namespace/name"); ``security`` is its manifest's scan (default: clean).

        An inactive tag (expired or deleted, still in the tag history) is left out when ``onlyActiveTags`` is set.
        """
        self.quay_tags.setdefault(repository, []).append(_QuayTag(name, digest, last_modified, size, active))
        self.quay_scans[digest] = security if security is not None else quay_security()

    def add_harbor_artifact(
        self,
        repository: str,
        digest: str,
        *,
        tags: tuple[str, ...] | list[str] = (),
        push_time: datetime.datetime = EPOCH,
        size: int = 1000,
        scan: HarborScan | None = None,
    ) -> None:
        """An artifact of a Harbor repository ("project/name", the name may hold slashes); no scan by default."""
        self.harbor_projects.add(repository.partition("/")[0])
        self.harbor_artifacts.setdefault(repository, []).append(
            _HarborArtifact(digest, tuple(tags), push_time, size, scan)
        )

    def inject(self, path: str, *faults: Fault) -> None:
        """Queue faults for the requests whose raw path matches ``path`` (an fnmatch pattern: ``*`` for any)."""
        with self._lock:
            self._faults.setdefault(path, deque()).extend(faults)

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._requests)

    def received(self, pattern: str = "*") -> list[Received]:
        """The requests received whose raw path matches ``pattern`` (fnmatch), in order."""
        return [r for r in self.requests if fnmatch.fnmatchcase(r.path, pattern)]

    # --- used by the handler ---------------------------------------------------------------------------------

    def _record(self, received: Received) -> Fault | None:
        """Record a request and take the first fault queued for its path, if any."""
        with self._lock:
            self._requests.append(received)
            for pattern, queue in self._faults.items():
                if queue and fnmatch.fnmatchcase(received.path, pattern):
                    return queue.popleft()
        return None

    def _authorised(self, headers: dict[str, str]) -> bool:
        sent = headers.get("authorization", "")
        if self.bearer is not None and sent != f"Bearer {self.bearer}":
            return False
        if self.basic is not None:
            expected = base64.b64encode(":".join(self.basic).encode()).decode()
            return sent == f"Basic {expected}"
        return True


class _Handler(BaseHTTPRequestHandler):
    """Routes the request to the endpoint it mirrors, after the fault queue and the credentials had their say."""

    fake: FakeRegistry  # set on the subclass made by FakeRegistry.start

    # The route patterns match the path decoded once, as the registries' routers do: a repository name with an
    # unencoded or singly-encoded slash spans several segments and reaches no route.
    ROUTES = (
        (re.compile(r"/api/v1/repository/(?P<ns>[^/]+)/(?P<name>[^/]+)/tag/?"), "quay_tags"),
        (
            re.compile(r"/api/v1/repository/(?P<ns>[^/]+)/(?P<name>[^/]+)/manifest/(?P<ref>[^/]+)/security/?"),
            "quay_security",
        ),
        (
            re.compile(r"/api/v2\.0/projects/(?P<project>[^/]+)/repositories/(?P<name>[^/]+)/artifacts"),
            "harbor_artifacts",
        ),
        (
            re.compile(
                r"/api/v2\.0/projects/(?P<project>[^/]+)/repositories/(?P<name>[^/]+)"
                r"/artifacts/(?P<ref>[^/]+)/additions/(?P<addition>[^/]+)"
            ),
            "harbor_addition",
        ),
    )

    def log_message(self, format, *args):
        pass  # the test output is no place for an access log

    def do_GET(self):
        split = urlsplit(self.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        headers = {name.lower(): value for name, value in self.headers.items()}
        fault = self.fake._record(Received("GET", split.path, query, headers))
        # The client may have given up (a delay longer than its read timeout): then nobody is left to answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._answer(split.path, query, headers, fault)

    def _answer(self, raw_path: str, query: dict[str, str], headers: dict[str, str], fault: Fault | None):
        path = unquote(raw_path)
        harbor = path.startswith("/api/v2.0/")
        extra = {}
        if fault is not None:
            if fault.delay and self.fake._closing.wait(fault.delay):
                return
            if fault.retry_after is not None:
                extra["Retry-After"] = fault.retry_after
            if fault.malformed:
                return self._send(200, b'{"tags": [{"name": "1.0", "manifest_digest": ', extra)
            if fault.status is not None:
                return self._error(fault.status, harbor, "injected fault", extra)
        if not self.fake._authorised(headers):
            return self._error(401, harbor, "unauthorized", extra)
        for pattern, endpoint in self.ROUTES:
            match = pattern.fullmatch(path)
            if match:
                status, body, more = getattr(self, endpoint)(raw_path, query, **match.groupdict())
                return self._json(status, body, {**extra, **more})
        return self._error(404, harbor, f"no route for {path}", extra)

    # --- Quay ------------------------------------------------------------------------------------------------

    def quay_tags(self, raw_path, query, ns, name):
        """Quay API v1: GET /api/v1/repository/{repository}/tag/ (listRepoTags).

        Parameters onlyActiveTags, limit (at most 100, 50 by default) and page (from 1); the answer is
        {"tags": [...], "page": n, "has_additional": bool}.
        """
        repository = f"{ns}/{name}"
        if repository not in self.fake.quay_tags:
            return self._quay_error(404, "Not Found")
        tags = self.fake.quay_tags[repository]
        if query.get("onlyActiveTags", "").lower() == "true":
            tags = [tag for tag in tags if tag.active]
        limit = max(1, min(int(query.get("limit", 50)), DOCUMENTED_MAX_PAGE_SIZE, self.fake.max_page_size))
        page = max(1, int(query.get("page", 1)))
        chosen = tags[(page - 1) * limit : page * limit]
        body = {
            "tags": [
                {
                    "name": tag.name,
                    "reversion": False,
                    "start_ts": int(tag.last_modified.timestamp()),
                    "manifest_digest": tag.digest,
                    "is_manifest_list": False,
                    "size": tag.size,
                    "last_modified": _quay_date(tag.last_modified),
                }
                | ({} if tag.active else {"end_ts": int(tag.last_modified.timestamp()) + 60, "expiration": ""})
                for tag in chosen
            ],
            "page": page,
            "has_additional": len(tags) > page * limit,
        }
        return 200, body, {}

    def quay_security(self, raw_path, query, ns, name, ref):
        """Quay API v1: GET /api/v1/repository/{repository}/manifest/{manifestref}/security (getManifestSecurity).

        {"status": "scanned" | "queued" | "failed" | "unsupported", "data": {"Layer": {"Features": [...]}}}; the
        vulnerabilities are listed only with vulnerabilities=true.
        """
        if f"{ns}/{name}" not in self.fake.quay_tags or self.fake.quay_scans.get(ref) is None:
            return self._quay_error(404, "Not Found")
        report = json.loads(json.dumps(self.fake.quay_scans[ref]))  # a copy, trimmed below
        if query.get("vulnerabilities", "").lower() != "true" and report.get("data"):
            for feature in report["data"]["Layer"]["Features"]:
                feature.pop("Vulnerabilities", None)
        return 200, report, {}

    @staticmethod
    def _quay_error(status: int, title: str):
        return status, {"detail": title, "error_message": title, "status": status, "title": title.lower()}, {}

    # --- Harbor ----------------------------------------------------------------------------------------------

    def harbor_artifacts(self, raw_path, query, project, name):
        """Harbor API v2.0: GET /projects/{project_name}/repositories/{repository_name}/artifacts (listArtifacts).

        The repository name is URL-encoded twice by the client (decoded once by the router, once by the handler).
        Parameters page (from 1), page_size (at most 100, 10 by default), with_tag (default true),
        with_scan_overview (default false); headers X-Total-Count and Link (rel="prev", rel="next").
        """
        repository = f"{project}/{unquote(name)}"
        if project not in self.fake.harbor_projects:
            return self._harbor_error(404, f"project {project} not found")
        if repository not in self.fake.harbor_artifacts and not self.fake.harbor_empty_unknown_repository:
            return self._harbor_error(404, f"repository {repository} not found")
        artifacts = self.fake.harbor_artifacts.get(repository, [])
        size = max(1, min(int(query.get("page_size", 10)), DOCUMENTED_MAX_PAGE_SIZE, self.fake.max_page_size))
        page = max(1, int(query.get("page", 1)))
        chosen = artifacts[(page - 1) * size : page * size]
        with_tag = query.get("with_tag", "true").lower() == "true"
        with_scan = query.get("with_scan_overview", "false").lower() == "true"
        body = [self._artifact(raw_path, index, a, with_tag, with_scan) for index, a in enumerate(chosen, start=1)]
        links = []
        if page > 1:
            links.append(f'<{raw_path}?{urlencode({**query, "page": page - 1})}>; rel="prev"')
        if page * size < len(artifacts):
            links.append(f'<{raw_path}?{urlencode({**query, "page": page + 1})}>; rel="next"')
        headers = {"X-Total-Count": str(len(artifacts))}
        if links:
            headers["Link"] = " , ".join(links)
        return 200, body, headers

    @staticmethod
    def _artifact(raw_path: str, index: int, artifact: _HarborArtifact, with_tag: bool, with_scan: bool) -> dict:
        pushed = _harbor_date(artifact.push_time)
        body = {
            "id": index,
            "type": "IMAGE",
            "media_type": "application/vnd.docker.container.image.v1+json",
            "manifest_media_type": "application/vnd.docker.distribution.manifest.v2+json",
            "project_id": 1,
            "repository_id": 1,
            "digest": artifact.digest,
            "size": artifact.size,
            "push_time": pushed,
            "pull_time": "0001-01-01T00:00:00.000Z",
            "extra_attrs": {"architecture": "amd64", "os": "linux"},
            "annotations": None,
            "references": None,
            "labels": None,
            "addition_links": {
                "build_history": {"absolute": False, "href": f"{raw_path}/{artifact.digest}/additions/build_history"},
                "vulnerabilities": {
                    "absolute": False,
                    "href": f"{raw_path}/{artifact.digest}/additions/vulnerabilities",
                },
            },
        }
        if with_tag:
            body["tags"] = [
                {
                    "id": index * 100 + n,
                    "repository_id": 1,
                    "artifact_id": index,
                    "name": tag,
                    "push_time": pushed,
                    "pull_time": "0001-01-01T00:00:00.000Z",
                    "immutable": False,
                    "signed": False,
                }
                for n, tag in enumerate(artifact.tags)
            ] or None  # Harbor sends null, not [], for an untagged artifact
        if with_scan and artifact.scan is not None:
            body["scan_overview"] = {HARBOR_REPORT_TYPE: _Handler._overview(artifact.scan)}
        return body

    @staticmethod
    def _overview(scan: HarborScan) -> dict:
        overview = {
            "report_id": "5e6a5a5b-0000-4000-8000-000000000001",
            "scan_status": scan.status,
            "complete_percent": 100 if scan.status == "Success" else 0,
            "duration": 3,
            "start_time": _harbor_date(EPOCH),
            "end_time": _harbor_date(EPOCH),
            "scanner": {"name": "Trivy", "vendor": "Aqua Security", "version": "v0.50.1"},
        }
        if scan.status == "Success":
            # Harbor's summary counts findings per package, so a CVE in two packages counts twice here.
            counts: dict[str, int] = {}
            for vulnerability in scan.vulnerabilities:
                counts[vulnerability.severity] = counts.get(vulnerability.severity, 0) + 1
            overview["summary"] = {"total": len(scan.vulnerabilities), "fixable": 0, "summary": counts}
            overview["severity"] = max(counts, key=_HARBOR_ORDER.index, default="None")
        return overview

    def harbor_addition(self, raw_path, query, project, name, ref, addition):
        """Harbor API v2.0: GET /projects/{project_name}/repositories/{repository_name}/artifacts/{reference}
        /additions/{addition} (getAddition), here for addition "vulnerabilities": the reports by MIME type.
        """
        repository = f"{project}/{unquote(name)}"
        artifact = next((a for a in self.fake.harbor_artifacts.get(repository, []) if a.digest == ref), None)
        if artifact is None or addition != "vulnerabilities":
            return self._harbor_error(404, f"artifact {repository}@{ref} not found")
        if artifact.scan is None or artifact.scan.status != "Success":
            return 200, {}, {}
        vulnerabilities = [
            {
                "id": v.id,
                "package": v.package,
                "version": v.version,
                "fix_version": "",
                "severity": v.severity,
                "description": "",
                "links": [f"https://avd.aquasec.com/nvd/{v.id.lower()}"],
            }
            for v in artifact.scan.vulnerabilities
        ]
        report = {
            "generated_at": _harbor_date(EPOCH),
            "artifact": {"repository": repository, "digest": ref, "tag": "", "mime_type": ""},
            "scanner": {"name": "Trivy", "vendor": "Aqua Security", "version": "v0.50.1"},
            "severity": self._overview(artifact.scan)["severity"],
            "vulnerabilities": vulnerabilities,
        }
        return 200, {HARBOR_REPORT_TYPE: report}, {}

    @staticmethod
    def _harbor_error(status: int, message: str):
        code = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND"}.get(status, "UNKNOWN")
        return status, {"errors": [{"code": code, "message": message}]}, {}

    # --- writing ---------------------------------------------------------------------------------------------

    def _error(self, status: int, harbor: bool, message: str, extra: dict[str, str]):
        _status, body, _headers = self._harbor_error(status, message) if harbor else self._quay_error(status, message)
        return self._json(status, body, extra)

    def _json(self, status: int, body, headers: dict[str, str]):
        return self._send(status, json.dumps(body).encode(), headers)

    def _send(self, status: int, payload: bytes, headers: dict[str, str]):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


_HARBOR_ORDER = ["None", "Unknown", "Negligible", "Low", "Medium", "High", "Critical"]


def harbor_path(repository: str) -> str:
    """The raw path of a Harbor repository's artifact list: the name part encoded twice, as Harbor wants it."""
    project, _, name = repository.partition("/")
    return f"/api/v2.0/projects/{quote(project, safe='')}/repositories/{quote(quote(name, safe=''), safe='')}/artifacts"


def quay_path(repository: str) -> str:
    """The raw path of a Quay repository's tag list."""
    return f"/api/v1/repository/{repository}/tag/"
