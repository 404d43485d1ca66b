import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import time_machine

from credits import hibernation
from credits.models import ProvisioningRequest

pytestmark = pytest.mark.django_db
SECRET = "whsec_test_provisioning"


class Platform:
    """A stand-in provisioning platform on a real socket: verifies the signature and
    answers with the status it is told to."""

    def __init__(self):
        self.status = 200
        self.received = []
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ts = self.headers["X-Cloudbill-Timestamp"]
                expected = "v1=" + hmac.new(SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
                valid = hmac.compare_digest(expected, self.headers["X-Cloudbill-Signature"])
                platform.received.append((json.loads(body), valid))
                self.send_response(platform.status if valid else 401)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/billing"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def platform(settings):
    p = Platform()
    settings.PROVISIONING_URL = p.url
    settings.PROVISIONING_SECRET = SECRET
    settings.PROVISIONING_BACKEND = "credits.provisioning.HttpBackend"
    yield p
    p.close()


def test_a_hibernate_request_is_signed_and_retried_with_backoff_until_acknowledged(org, platform):
    t0 = datetime(2030, 7, 1, 9, 0, tzinfo=UTC)
    request = ProvisioningRequest.objects.create(
        organization=org, action="hibernate", payload={"resource_ids": [7, 9], "reason": "credit exhausted"},
        next_attempt_at=t0,
    )
    platform.status = 503
    with time_machine.travel(t0, tick=False):
        assert hibernation.deliver(request_id=request.pk) is False
    request.refresh_from_db()
    assert (request.status, request.attempts, request.last_error) == ("pending", 1, "HTTP 503: ")
    assert request.next_attempt_at == t0 + timedelta(seconds=30)
    with time_machine.travel(t0 + timedelta(seconds=29), tick=False):
        assert hibernation.deliver_due() == 0  # not due yet
    platform.status = 202
    with time_machine.travel(t0 + timedelta(seconds=30), tick=False):
        assert hibernation.deliver_due() == 1
    request.refresh_from_db()
    assert (request.status, request.attempts, request.last_error) == ("acknowledged", 2, "")
    body, valid = platform.received[-1]
    assert valid and body == {"id": f"provreq_{request.pk}", "action": "hibernate", "organization_id": org.pk,
                              "resource_ids": [7, 9], "reason": "credit exhausted"}
    assert hibernation.deliver(request_id=request.pk) is False  # acknowledged: never sent again
    assert len(platform.received) == 2


def test_a_wrong_secret_is_refused_by_the_platform_and_kept_for_retry(org, platform, settings):
    settings.PROVISIONING_SECRET = "not-the-platform-secret"
    request = ProvisioningRequest.objects.create(organization=org, action="resume", payload={"resource_ids": []})
    assert hibernation.deliver(request_id=request.pk) is False
    request.refresh_from_db()
    assert request.status == "pending" and request.last_error.startswith("HTTP 401")
    assert platform.received[0][1] is False


def test_an_unreachable_platform_is_recorded_as_the_last_error(org, settings):
    settings.PROVISIONING_URL = "http://127.0.0.1:9/unreachable"
    settings.PROVISIONING_SECRET = SECRET
    settings.PROVISIONING_BACKEND = "credits.provisioning.HttpBackend"
    request = ProvisioningRequest.objects.create(organization=org, action="hibernate", payload={"resource_ids": [1]})
    assert hibernation.deliver(request_id=request.pk) is False
    request.refresh_from_db()
    assert "ConnectionError" in request.last_error and request.attempts == 1


def test_backoff_grows_and_is_capped():
    assert [hibernation.delivery_delay(n).total_seconds() for n in (1, 2, 3, 10, 30)] == [30, 60, 120, 1800, 1800]


@pytest.mark.parametrize("action", ["hibernate", "resume", "delete_disks"])
def test_every_action_reaches_the_platform_signed_through_the_one_outbox(org, platform, action):
    """Credits' hibernation and resume, budgets' hard cap and the ladder's disk deletion all
    write their request with `provisioning_outbox`: each action arrives signed and verified."""
    now = datetime(2030, 7, 1, 9, 0, tzinfo=UTC)
    request = hibernation.provisioning_outbox(org, action, [3, 4], f"why {action}", now)
    with time_machine.travel(now, tick=False):
        assert hibernation.deliver(request_id=request.pk) is True
    body, valid = platform.received[-1]
    assert valid and body["action"] == action and body["resource_ids"] == [3, 4] and body["reason"] == f"why {action}"
    request.refresh_from_db()
    assert request.status == "acknowledged"
