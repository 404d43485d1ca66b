"""A webhook receiver that verifies what it gets with the `standardwebhooks` library, as
a customer's would: the tests start it on 127.0.0.1:0, the demo runs it with
`python manage.py webhook_receiver`.

Each request is verified with `Webhook(secret).verify(body, headers)` against every
secret the receiver knows (one, or several while a test checks rotation) and recorded
in `received`. Its answers can be scripted: `script` is a list of (status, delay_s)
taken in order for the next requests (then 200 immediately), so a test can make it fail
with 500s or answer too late."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass
class Received:
    headers: dict[str, str]
    body: str
    verified_with: list[int]  # indexes of the secrets that verified it
    payload: dict | None
    status: int  # what the receiver answered

    @property
    def verified(self) -> bool:
        return bool(self.verified_with)

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")


@dataclass
class Receiver:
    secrets: list[str]
    host: str = "127.0.0.1"
    port: int = 0
    script: list[tuple[int, float]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    on_receive: object = None  # callable(Received) -> None, for the demo's printing

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                receiver._handle(self)

            def log_message(self, format, *args) -> None:  # noqa: A002 - quiet
                pass

        self.server = ThreadingHTTPServer((self.host, self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hook"

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("content-length") or 0)
        body = request.rfile.read(length).decode()
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified, payload = [], None
        for i, secret in enumerate(self.secrets):
            try:
                payload = Webhook(secret).verify(body, headers)
                verified.append(i)
            except WebhookVerificationError:
                continue
        with self._lock:
            status, delay = self.script.pop(0) if self.script else (200, 0)
        if not verified:
            status = 400
        if delay:
            time.sleep(delay)
        entry = Received(headers=headers, body=body, verified_with=verified, payload=payload, status=status)
        with self._lock:
            self.received.append(entry)
        if callable(self.on_receive):
            self.on_receive(entry)
        answer = json.dumps({"ok": status < 300, "verified": bool(verified)}).encode()
        try:
            request.send_response(status)
            request.send_header("content-type", "application/json")
            request.send_header("content-length", str(len(answer)))
            request.end_headers()
            request.wfile.write(answer)
        except (BrokenPipeError, ConnectionResetError):  # the sender gave up waiting (a timeout test)
            pass

    def start(self) -> Receiver:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
