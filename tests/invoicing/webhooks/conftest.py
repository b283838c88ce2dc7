"""A real HTTP receiver on 127.0.0.1 (port 0) that records every request and answers what the test scripts."""

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from tickets.services import api_key_create


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes

    def verified(self, secret: str):
        """The payload as a receiver gets it from the Standard Webhooks library; raises if the signature is bad."""
        return Webhook(secret).verify(self.body, self.headers)


@dataclass
class Receiver:
    url: str
    requests: list = field(default_factory=list)
    # Scripted answers, consumed in order: an int status, or ("sleep", seconds) to time the client out.
    script: list = field(default_factory=list)
    default_status: int = 200
    body: bytes = b'{"ok": true}'

    def answer(self):
        return self.script.pop(0) if self.script else self.default_status


@pytest.fixture
def receiver():
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            state.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                           self.rfile.read(length)))
            answer = state.answer()
            if isinstance(answer, tuple):
                time.sleep(answer[1])
                answer = 200
            self.send_response(answer)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def allow_private(settings):
    """The receiver is on loopback: allowed only through the setting (the tests run with DEBUG off)."""
    settings.WEBHOOK_ALLOW_PRIVATE = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    settings.WEBHOOK_BACKOFF_BASE_SECONDS = 30
    return settings


def hooks_client(merchant, scopes=("webhooks",)):
    _, plain = api_key_create(merchant=merchant, name="ERP", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


@pytest.fixture
def make_hooks_client(db):
    return hooks_client


@pytest.fixture
def api(merchant):
    return hooks_client(merchant)


@pytest.fixture
def other_api(other_merchant):
    return hooks_client(other_merchant)
