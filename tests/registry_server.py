"""A real Distribution registry (Debian's ``docker-registry``) for the registry client tests.

``LocalRegistry`` runs the binary on 127.0.0.1 with throw-away filesystem storage and pushes small but valid
images through the registry's own HTTP API, so that the tests read what a real registry answers rather than what
we believe it answers. With ``token_auth=True`` it also runs a token server (the Docker token protocol: basic auth
in, a signed JWT out) and configures the registry to trust only the tokens it issues.

Use it as a context manager::

    with LocalRegistry() as registry:
        digest = registry.push("team/app", "1.0")
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from registry.demo import DOCKER_MANIFEST, IMAGE_PARTS, OCI_MANIFEST, PLATFORM, ImagePusher, stop_process
from tests.processes import free_port, wait_for_http

BINARY = "/usr/bin/docker-registry"
TIMEOUT = (5, 30)  # (connect, read) for every request the helper sends

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST)

# An index references image manifests of its own family (the way real multi-arch pushes do).
_INDEX_CHILD = {OCI_INDEX: OCI_MANIFEST, DOCKER_MANIFEST_LIST: DOCKER_MANIFEST}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    """The signing side of the token server: an RSA key and its self-signed certificate (the registry's
    ``rootcertbundle``), and JWTs in the shape Distribution 2.8 verifies (RS256, certificate chain in ``x5c``)."""

    def __init__(self, issuer: str, service: str, lifetime: int = 300):
        self.issuer = issuer
        self.service = service
        self.lifetime = lifetime
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)])
        now = datetime.datetime.now(datetime.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            # Backdated so that a clock a little behind ours still accepts it.
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            # A root of its own: the registry finds the x5c certificate itself in the rootcertbundle.
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def token(self, subject: str, access: list[dict]) -> str:
        """A signed JWT granting ``access`` to ``subject`` for ``lifetime`` seconds."""
        now = int(time.time())
        header = {
            "typ": "JWT",
            "alg": "RS256",
            # Standard (not URL-safe) base64 of the DER certificate, as RFC 7515 asks for x5c.
            "x5c": [base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()],
        }
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + self.lifetime,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


def requested_access(scopes: list[str]) -> list[dict]:
    """``repository:team/app:pull,push`` -> the ``access`` claim entries. The name sits between the first and the
    last colon, since a repository name may itself hold a colon (a registry host with a port)."""
    access = []
    for scope in scopes:
        for item in scope.split():
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind and name:
                access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]})
    return access


class TokenServer:
    """A token endpoint in a thread: basic auth checked against ``users``, every asked scope granted, 401 else."""

    def __init__(self, issuer: TokenIssuer, users: dict[str, str]):
        self.issuer = issuer
        self.users = dict(users)
        self.requests = 0  # how many token requests arrived, granted or not
        self._lock = threading.Lock()
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/token"
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, name="registry-token-server", daemon=True
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # the name http.server calls
                with owner._lock:
                    owner.requests += 1
                query = parse_qs(urlsplit(self.path).query)
                user = owner.authenticate(self.headers.get("Authorization", ""))
                if user is None or query.get("service", [""])[0] != owner.issuer.service:
                    self._answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
                    return
                token = owner.issuer.token(user, requested_access(query.get("scope", [])))
                self._answer(200, {"token": token, "access_token": token, "expires_in": owner.issuer.lifetime})

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="registry token"')
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format, *args):
                pass  # the tests' output is no place for an access log

        return Handler

    def authenticate(self, header: str) -> str | None:
        """The user named by a valid ``Authorization: Basic`` header, else None (compared in constant time)."""
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            username, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except ValueError:
            return None
        expected = self.users.get(username)
        if expected is None or not secrets.compare_digest(expected.encode(), password.encode()):
            return None
        return username

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join(timeout=5)
        self.server.server_close()  # the port is bound from the constructor on, started or not


class LocalRegistry(ImagePusher):
    """Debian's ``docker-registry`` (Distribution 2.8) on 127.0.0.1 and a free port, storing in a temporary
    directory that :meth:`stop` removes. ``url`` is its base URL; :meth:`push` and :meth:`delete` change it through
    the HTTP API. With ``token_auth=True``, every call needs a token from the :class:`TokenServer` it starts, which
    knows ``users`` (the helper itself pushes as the first of them)."""

    service = "local-registry"
    issuer_name = "local-registry-token-issuer"

    def __init__(self, *, token_auth: bool = False, users: dict[str, str] | None = None, binary: str = BINARY):
        if token_auth and not users:
            raise ValueError("token_auth needs at least one user (the helper pushes as the first)")
        super().__init__()
        self.token_auth = token_auth
        self.users = dict(users or {})
        self.binary = binary
        self.directory: Path | None = None
        self.process: subprocess.Popen | None = None
        self.token_server: TokenServer | None = None
        self._tokens: dict[str, str] = {}  # repository -> the bearer token of the helper's own calls

    # --- life cycle -----------------------------------------------------------------------------------------

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def log_path(self) -> Path:
        assert self.directory is not None, "the registry is not started"
        return self.directory / "registry.log"

    def start(self) -> LocalRegistry:
        """Write the configuration, start the binary (and the token server) and wait until it answers."""
        if not Path(self.binary).exists():
            raise FileNotFoundError(f"{self.binary} is missing (Debian package docker-registry)")
        self.directory = Path(tempfile.mkdtemp(prefix="local-registry-"))
        try:
            port, debug_port = free_port(), free_port()
            self.url = f"http://127.0.0.1:{port}"
            config = self._config(port, debug_port)
            (self.directory / "config.yml").write_text(json.dumps(config, indent=2))  # JSON is YAML too
            if self.token_server:
                self.token_server.start()
            with self.log_path.open("wb") as log:
                self.process = subprocess.Popen(
                    [self.binary, "serve", str(self.directory / "config.yml")],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                )  # fmt: skip
            # The health endpoint of the debug listener answers without credentials, even in token mode where
            # /v2/ answers 401 (which wait_for_http would take for "not up yet").
            try:
                wait_for_http(f"http://127.0.0.1:{debug_port}/debug/health", seconds=20)
            except AssertionError as exc:
                raise RuntimeError(f"docker-registry did not start: {self.log_tail()}") from exc
        except BaseException:
            self.stop()
            raise
        return self

    def _config(self, port: int, debug_port: int) -> dict:
        assert self.directory is not None
        storage = self.directory / "storage"
        storage.mkdir()
        config: dict = {
            "version": 0.1,
            # Warnings only, and no access log: a failing test should show the registry's complaints, not noise.
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
            "http": {
                "addr": f"127.0.0.1:{port}",
                # A fixed secret silences the "no HTTP secret" warning the registry logs at every start.
                "secret": secrets.token_hex(16),
                "debug": {"addr": f"127.0.0.1:{debug_port}"},
            },
        }
        if self.token_auth:
            issuer = TokenIssuer(self.issuer_name, self.service)
            bundle = self.directory / "token-root.pem"
            bundle.write_bytes(issuer.certificate_pem())
            self.token_server = TokenServer(issuer, self.users)
            config["auth"] = {
                "token": {
                    "realm": self.token_server.url,
                    "service": self.service,
                    "issuer": self.issuer_name,
                    "rootcertbundle": str(bundle),
                }
            }
        return config

    def stop(self) -> None:
        """Terminate the registry (killed if it lingers), stop the token server and remove the storage."""
        stop_process(self.process)
        self.process = None
        if self.token_server is not None:
            self.token_server.stop()
            self.token_server = None
        self.session.close()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except (OSError, AssertionError):
            return "(no log)"

    # --- the helper's own HTTP calls ------------------------------------------------------------------------

    def request(
        self, method: str, path_or_url: str, *, repository: str, expect: Sequence[int], headers=None, **kwargs
    ) -> requests.Response:
        """One call to the registry; fails on a status not in ``expect``.

        In token mode it sends the token it last got for ``repository`` and, when challenged (no token yet, or one
        for a narrower scope), fetches one for the scope asked as the first user and sends the call again.
        """
        url = path_or_url if path_or_url.startswith("http") else self.url + path_or_url
        headers = dict(headers or {})
        for attempt in range(2):
            token = self._tokens.get(repository)
            sent = {**headers, "Authorization": f"Bearer {token}"} if token else headers
            response = self.session.request(method, url, headers=sent, timeout=TIMEOUT, **kwargs)
            if response.status_code != 401 or not self.token_auth or attempt:
                break
            self._tokens[repository] = self._fetch_token(response.headers.get("WWW-Authenticate", ""))
        if response.status_code not in expect:
            raise AssertionError(f"{method} {url}: HTTP {response.status_code} {response.text[:500]}")
        return response

    def _fetch_token(self, challenge: str) -> str:
        # Parsed here rather than with the client's parser: the helper must not lean on the code under test.
        assert challenge.lower().startswith("bearer "), f"not a token challenge: {challenge!r}"
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        username, password = next(iter(self.users.items()))
        response = requests.get(
            params["realm"],
            params={"service": params.get("service", ""), "scope": params.get("scope", "")},
            auth=(username, password),
            timeout=TIMEOUT,
        )
        response.raise_for_status()
        return response.json()["token"]

    # --- pushing (the upload itself is ImagePusher's) and deleting -----------------------------------------

    def _descriptor(self, repository: str, digest: str) -> dict:
        """An index entry for a manifest already in ``repository``: its type and size as the registry has them."""
        head = self.request(
            "HEAD",
            f"/v2/{repository}/manifests/{digest}",
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
            repository=repository,
            expect=(200,),
        )
        return {
            "mediaType": head.headers["Content-Type"],
            "size": int(head.headers["Content-Length"]),
            "digest": digest,
            "platform": PLATFORM,
        }

    def push(
        self,
        repository: str,
        tag: str,
        *,
        payload: bytes = b"hello from the registry tests\n",
        media_type: str = OCI_MANIFEST,
        references: Sequence[str] = (),
    ) -> str:
        """Push an image (or an index) as ``repository:tag``; returns the manifest digest the registry answered.

        An image manifest gets a config blob and one layer made from ``payload``, so another payload gives another
        digest. An index (``OCI_INDEX``, ``DOCKER_MANIFEST_LIST``) lists ``references``, digests of manifests
        already pushed to ``repository``; without them it first pushes, untagged, an image of its family made from
        ``payload``.
        """
        if media_type in IMAGE_PARTS:
            return self.push_manifest(repository, tag, self.image_manifest(repository, payload, media_type), media_type)
        if media_type not in _INDEX_CHILD:
            raise ValueError(f"unsupported manifest media type {media_type}")
        if not references:
            child_type = _INDEX_CHILD[media_type]
            child = self.image_manifest(repository, payload, child_type)
            references = [self.push_manifest(repository, None, child, child_type)]
        index = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": [self._descriptor(repository, digest) for digest in references],
        }
        return self.push_manifest(repository, tag, index, media_type)

    def delete(self, repository: str, digest: str) -> bool:
        """Delete a manifest by digest; False when the registry does not allow deletes (405)."""
        response = self.request(
            "DELETE", f"/v2/{repository}/manifests/{digest}", repository=repository, expect=(202, 405)
        )
        return response.status_code == 202
