"""Backends that carry hibernate/resume requests to the provisioning platform.

`settings.PROVISIONING_BACKEND` names a class with `send(request: ProvisioningRequest)`
that returns when the platform acknowledged and raises `DeliveryError` otherwise. The
outbox (`ProvisioningRequest`) and `deliver_due` retry with backoff until acknowledged.

The HTTP backend signs like this (the platform verifies):

    X-Cloudbill-Timestamp: <unix seconds>
    X-Cloudbill-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>

with the exact body bytes sent; the platform should refuse a timestamp older than
five minutes. Any 2xx is an acknowledgement.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Protocol

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from credits.models import ProvisioningRequest

logger = logging.getLogger("credits.provisioning")
SIGNATURE_HEADER = "X-Cloudbill-Signature"
TIMESTAMP_HEADER = "X-Cloudbill-Timestamp"


class DeliveryError(Exception):
    pass


class Backend(Protocol):
    """`settings.PROVISIONING_BACKEND`: delivers a request, or raises DeliveryError."""

    def send(self, request: ProvisioningRequest) -> None: ...


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


def request_body(request: ProvisioningRequest) -> bytes:
    return json.dumps(
        {"id": f"provreq_{request.pk}", "action": request.action, "organization_id": request.organization_id,
         **request.payload},
        sort_keys=True, separators=(",", ":"),
    ).encode()


class HttpBackend:
    """Posts the signed JSON request to `PROVISIONING_URL`."""

    def __init__(self) -> None:
        if not settings.PROVISIONING_URL or not settings.PROVISIONING_SECRET:
            raise ImproperlyConfigured("PROVISIONING_URL and PROVISIONING_SECRET are required for the HTTP backend.")
        self.url = settings.PROVISIONING_URL
        self.secret = settings.PROVISIONING_SECRET

    def send(self, request: ProvisioningRequest) -> None:
        body = request_body(request)
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(ts),
            SIGNATURE_HEADER: sign(self.secret, ts, body),
            "Idempotency-Key": f"provreq_{request.pk}",
        }
        try:
            response = requests.post(self.url, data=body, headers=headers, timeout=settings.PROVISIONING_TIMEOUT)
        except requests.RequestException as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"HTTP {response.status_code}: {response.text[:300]}")


class LoggingBackend:
    """DEMO: logs the request it would send and counts it as acknowledged."""

    def send(self, request: ProvisioningRequest) -> None:
        logger.info("provisioning (logging backend, nothing sent): %s", request_body(request).decode())


def backend() -> Backend:
    return import_string(settings.PROVISIONING_BACKEND)()
