"""HTTP plumbing of the Kubernetes emulator: server, keep-alive handler, chunked streams, request parsing."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import yaml

from .errors import ApiError, bad_request

logger = logging.getLogger("kubesim")


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw it (for tests that count API calls)."""

    method: str
    path: str
    query: str
    content_type: str
    status: int
    at: float = 0.0  # when it arrived (time.time())


class Server(ThreadingHTTPServer):
    """A threaded HTTP server that hands each request to `serve(request, handler) -> status` and remembers its
    connections, so that stopping it also ends keep-alive connections and watches."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address, serve: Callable, log: Callable[[RequestRecord], None]):
        self.serve, self.log = serve, log
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, Handler)

    def process_request(self, request, client_address):
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        # A client that hung up (e.g. after its read timeout) is normal here, not worth a traceback on stderr.
        logger.debug("emulator: connection from %s ended with an error", client_address, exc_info=True)


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, JSON responses and chunked watch streams."""

    protocol_version = "HTTP/1.1"
    server: Server
    timeout = 600  # idle keep-alive connections of vanished clients do not pin a thread forever

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes; without this, delayed ACKs add ~40 ms to every response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):
        logger.debug("emulator: " + format, *args)  # quiet: no request lines on stderr

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():
                pass  # trailers
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        url = urlsplit(self.path)
        request = Request(self.command, url.path.rstrip("/") or "/", parse_qs(url.query), self.headers)
        try:
            request.body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        self._pending = RequestRecord(request.method, request.path, url.query, request.content_type, 0, time.time())
        status = self.server.serve(request, self)
        if self._pending is not None:  # no response went out (the client hung up)
            self._log_pending(status)

    def _log_pending(self, status: int) -> None:
        record, self._pending = self._pending, None
        self.server.log(replace(record, status=status))

    def send_response(self, code, message=None):
        # Logged before the response leaves, so a test that got its answer always finds the request in the log.
        if getattr(self, "_pending", None) is not None:
            self._log_pending(code)
        super().send_response(code, message)

    def send_json(self, code: int, payload, headers: dict | None = None) -> int:
        data = json.dumps(payload).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except OSError:
            self.close_connection = True
        return code

    def send_status(self, error: ApiError, headers: dict | None = None) -> int:
        return self.send_json(error.code, error.status(), headers)

    def start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def send_chunk(self, payload: dict) -> None:
        data = json.dumps(payload).encode() + b"\n"
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class Request:
    """The parts of an HTTP request the API logic needs."""

    def __init__(self, method: str, path: str, query: dict[str, list[str]], headers):
        self.method, self.path, self.query, self.headers = method, path, query, headers
        self.body = b""
        self.content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def param(self, name: str, default: str = "") -> str:
        return self.query.get(name, [default])[-1]

    def flag(self, name: str) -> bool:
        return self.param(name).lower() in ("true", "1")

    def manager(self) -> str:
        """`fieldManager`, or like the API server the first word of the User-Agent (e.g. `kubectl-patch`)."""
        return self.param("fieldManager") or (self.headers.get("User-Agent") or "unknown").split("/")[0]

    def json_body(self, *, yaml_allowed: bool = False):
        if "protobuf" in self.content_type or "cbor" in self.content_type:
            # Typed clients (e.g. `kubectl create namespace`) send protobuf; decoding it needs the schemas.
            message = f"the emulator only accepts JSON and YAML, not {self.content_type}"
            raise ApiError(415, "UnsupportedMediaType", message)
        if not self.body.strip():
            raise bad_request("the request body is empty")
        try:
            return json.loads(self.body)
        except ValueError as error:
            if not yaml_allowed:
                raise bad_request(f"the request body is not valid JSON: {error}") from None
        try:
            return yaml.safe_load(self.body)
        except yaml.YAMLError as error:
            raise bad_request(f"the request body is not valid YAML: {error}") from None
