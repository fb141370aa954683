"""A local S3 server for the backup tests: moto's server mode on 127.0.0.1, one process for the whole session.

moto keeps everything in memory and accepts any key pair, so each test takes a bucket of its own
(``LocalS3.bucket()``) and never sees another test's objects. ``LocalS3.client()`` is a boto3 client with
timeouts, for tests that put or read objects themselves.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import boto3
from botocore.config import Config

from registry.demo import stop_process
from tests.processes import free_port, wait_for_http

MOTO_SERVER = Path(sys.executable).with_name("moto_server")
REGION = "us-east-1"
ACCESS_KEY_ID = "AKIATESTBACKUPS00001"
SECRET_ACCESS_KEY = "test-secret-access-key-of-the-local-s3"  # moto accepts any pair


class LocalS3:
    """``moto_server`` on a free port of 127.0.0.1; stopped by ``stop()`` (or leaving the ``with`` block)."""

    def __init__(self):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen | None = None

    def start(self) -> LocalS3:
        self._process = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_http(f"{self.endpoint}/moto-api/", seconds=30)
        return self

    def stop(self) -> None:
        stop_process(self._process)

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def client(self, access_key_id: str = ACCESS_KEY_ID, secret_access_key: str = SECRET_ACCESS_KEY):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 1}),
        )

    def bucket(self) -> str:
        """A new, empty bucket of this test's own."""
        name = f"backups-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name
