"""Standard Webhooks signing, by the `standardwebhooks` package (the reference
implementation receivers verify with): `webhook-id`, `webhook-timestamp` and
`webhook-signature`, one `v1,<base64 HMAC-SHA256>` per secret, space-separated."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

from standardwebhooks import Webhook

SECRET_BYTES = 24  # 192 bits: Svix's length; within the spec's 24-64 bytes


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def headers(*, msg_id: str, at: datetime, body: str, secrets_: list[str]) -> dict[str, str]:
    """The three headers for one attempt at `at`; every secret signs (rotation overlap)."""
    signatures = [Webhook(s).sign(msg_id, at, body) for s in secrets_]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
