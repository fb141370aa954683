"""The image registry of the `make run` demo: Debian's Distribution server (``docker-registry``) on 127.0.0.1,
storing in a directory that outlives the run, and small but valid images pushed through its HTTP API.

The images are an OCI manifest, a config and one layer made from a payload, with fixed timestamps: the same
payload always gives the same digest, so pushing the demo again changes nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import secrets
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from urllib.parse import urljoin

import requests

BINARY = "docker-registry"
TIMEOUT = (5, 30)  # (connect, read) of every call
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
# The config and layer media types that go with each kind of image manifest.
IMAGE_PARTS = {
    OCI_MANIFEST: ("application/vnd.oci.image.config.v1+json", "application/vnd.oci.image.layer.v1.tar+gzip"),
    DOCKER_MANIFEST: (
        "application/vnd.docker.container.image.v1+json",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
    ),
}
PLATFORM = {"architecture": "amd64", "os": "linux"}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(payload: bytes) -> tuple[bytes, bytes]:
    """A tar holding one file with ``payload``: (uncompressed, gzipped), both reproducible (mtime 0)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("payload")
        info.size = len(payload)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(payload))
    uncompressed = raw.getvalue()
    return uncompressed, gzip.compress(uncompressed, mtime=0)


def stop_process(process: subprocess.Popen | None) -> None:
    """Terminate ``process`` if it runs, and kill it if it lingers."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


class ImagePusher:
    """Pushes images to a Distribution v2 registry at ``url`` (no authentication; subclasses add it in
    :meth:`request`)."""

    def __init__(self, url: str = ""):
        self.url = url
        self.session = requests.Session()

    def request(
        self, method: str, path_or_url: str, *, repository: str, expect, headers=None, **kwargs
    ) -> requests.Response:
        """One call to the registry; fails on a status not in ``expect``."""
        url = path_or_url if path_or_url.startswith("http") else self.url + path_or_url
        response = self.session.request(method, url, headers=headers or {}, timeout=TIMEOUT, **kwargs)
        if response.status_code not in expect:
            raise RuntimeError(f"{method} {url}: HTTP {response.status_code} {response.text[:500]}")
        return response

    def digest_of(self, repository: str, tag: str) -> str | None:
        """The digest ``repository:tag`` has now, or None when there is no such tag."""
        response = self.request(
            "HEAD",
            f"/v2/{repository}/manifests/{tag}",
            headers={"Accept": f"{OCI_MANIFEST}, {DOCKER_MANIFEST}"},
            repository=repository,
            expect=(200, 404),
        )
        return response.headers.get("Docker-Content-Digest") if response.status_code == 200 else None

    def push_blob(self, repository: str, data: bytes) -> str:
        """Upload ``data`` in one piece (POST opens the upload session, PUT with ``?digest=`` closes it)."""
        digest = sha256(data)
        opened = self.request("POST", f"/v2/{repository}/blobs/uploads/", repository=repository, expect=(202,))
        # Location carries the upload's state in its query; requests appends digest to it. It may be relative.
        location = urljoin(self.url + "/", opened.headers["Location"])
        closed = self.request(
            "PUT",
            location,
            params={"digest": digest},
            data=data,
            headers={"Content-Type": "application/octet-stream"},
            repository=repository,
            expect=(201,),
        )
        if closed.headers.get("Docker-Content-Digest") != digest:
            raise RuntimeError(f"the registry stored a blob as {closed.headers.get('Docker-Content-Digest')}")
        return digest

    def push_manifest(self, repository: str, tag: str | None, manifest: dict, media_type: str) -> str:
        """PUT a manifest under ``tag`` (untagged, by its digest, when None); returns the registry's digest."""
        body = json.dumps(manifest, indent=3).encode()
        response = self.request(
            "PUT",
            f"/v2/{repository}/manifests/{tag or sha256(body)}",
            data=body,
            headers={"Content-Type": media_type},
            repository=repository,
            expect=(201,),
        )
        digest = response.headers.get("Docker-Content-Digest")
        if digest != sha256(body):
            raise RuntimeError(f"the registry answered {digest} for a manifest hashing to {sha256(body)}")
        return digest

    def image_manifest(self, repository: str, payload: bytes, media_type: str = OCI_MANIFEST) -> dict:
        """Push the config and the layer of an image made from ``payload``; returns its manifest."""
        config_type, layer_type = IMAGE_PARTS[media_type]
        uncompressed, gzipped = layer(payload)
        config = json.dumps(
            {**PLATFORM, "config": {}, "rootfs": {"type": "layers", "diff_ids": [sha256(uncompressed)]}}
        ).encode()
        return {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": config_type, "size": len(config), "digest": self.push_blob(repository, config)},
            "layers": [{"mediaType": layer_type, "size": len(gzipped), "digest": self.push_blob(repository, gzipped)}],
        }

    def push_image(self, repository: str, tag: str, payload: bytes) -> str:
        """Push an OCI image made from ``payload`` as ``repository:tag``; returns its digest."""
        return self.push_manifest(repository, tag, self.image_manifest(repository, payload), OCI_MANIFEST)


class DemoRegistryServer(ImagePusher):
    """``docker-registry`` on 127.0.0.1:``port``, storing under ``directory`` (kept between runs)."""

    def __init__(self, directory: Path, port: int, binary: str = BINARY):
        super().__init__(f"http://127.0.0.1:{port}")
        self.directory = Path(directory)
        self.port = port
        self.binary = binary
        self.process: subprocess.Popen | None = None

    @property
    def config_path(self) -> Path:
        return self.directory / "config.yml"

    @property
    def log_path(self) -> Path:
        return self.directory / "registry.log"

    def write_config(self) -> Path:
        """The server's configuration (JSON is YAML too); the storage directory is created, never emptied."""
        self.directory.mkdir(parents=True, exist_ok=True)
        storage = self.directory / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(storage.resolve())}, "delete": {"enabled": True}},
            "http": {"addr": f"127.0.0.1:{self.port}", "secret": secrets.token_hex(16)},
        }
        self.config_path.write_text(json.dumps(config, indent=2))
        return self.config_path

    def command(self) -> list[str]:
        binary = shutil.which(self.binary) or self.binary
        return [binary, "serve", str(self.config_path)]

    def __enter__(self) -> DemoRegistryServer:
        self.write_config()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            self._wait_until_up(seconds=20)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        stop_process(self.process)
        self.process = None
        self.session.close()

    def _wait_until_up(self, seconds: float) -> None:
        """Until /v2/ answers: a bounded wait for a process we just started (it takes a few tens of ms)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"docker-registry exited: {tail}")
            try:
                if self.session.get(f"{self.url}/v2/", timeout=(1, 2)).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"docker-registry did not answer on {self.url} within {seconds} s")
