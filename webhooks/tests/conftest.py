from __future__ import annotations

import pytest

from webhooks.receiver import Receiver


@pytest.fixture
def receiver():
    """A Standard Webhooks receiver on 127.0.0.1:<free port>; give it the secrets to verify with."""
    r = Receiver(secrets=[]).start()
    yield r
    r.stop()


@pytest.fixture
def fast_retries(settings):
    """Retries due at once (so a test runs them with `deliver_due`), short timeouts."""
    from datetime import timedelta

    settings.WEBHOOKS_RETRY_BASE = timedelta(0)
    settings.WEBHOOKS_TIMEOUT = 0.5
    return settings
