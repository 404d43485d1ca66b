"""Schema-driven fuzzing (RELIABILITY.md: "malformed input is a 4xx with field messages,
never a 5xx"). Schemathesis reads /api/schema/ from the WSGI app and generates requests
for every operation, valid ones and invalid ones, as an integrator with a platform key
and as a customer with an organisation key. No answer may be a 5xx; every 4xx must be in
the one error format. A new endpoint joins by being in the schema.

Examples are bounded and derandomized (the same inputs every run), so CI stays fast and
a failure reproduces.
"""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from accounts.scopes import Role
from accounts.tests.factories import make_api_key

# Requests per run, shared out over operations x 2 modes x 2 callers, so the suite stays
# under a minute however many endpoints the apps add. FUZZ_BUDGET=20000 for a deep run.
FUZZ_BUDGET = int(os.environ.get("FUZZ_BUDGET", "600"))

# Known 5xx awaiting a fix in the owning app: "METHOD /path" -> why. Expected to fail, so
# the rest of the suite stays green; an entry that starts passing shows as XPASS.
KNOWN_DEFECTS: dict[str, str] = {}

SCHEMA = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
OPERATIONS = [
    pytest.param(op, id=f"{op.method.upper()} {op.path}", marks=[pytest.mark.xfail(reason=KNOWN_DEFECTS[key])]
                 if (key := f"{op.method.upper()} {op.path}") in KNOWN_DEFECTS else [])
    for op in (result.ok() for result in SCHEMA.get_all_operations())
]
MAX_EXAMPLES = max(3, FUZZ_BUDGET // (4 * max(1, len(OPERATIONS))))


@pytest.fixture
def wsgi_in_test_transaction():
    """Django's handler closes the connection after each request; inside a test that
    would end the test's transaction. The test client unhooks the same signal."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(org, other_org, make_member):
    """Real rows for the generated paths to hit: the caller's organisation, a member, a spare key."""
    member = make_member(org, Role.VIEWER)
    make_member(org, Role.OWNER)
    spare_key, _raw = make_api_key(org, scopes=["usage:read"], name="spare")
    return {"organization_pk": org.pk, "organizations": org.pk, "members": member.pk, "api-keys": spare_key.pk}


def _point_at_real_rows(case, world: dict) -> None:
    """Requests aim at existing rows, so bodies and queries reach the code behind the
    lookup (else nearly every request would stop at a 404): `{id}` is a row of the
    collection just before it, `{organization_pk}` the caller's organisation. Unknown
    ids are covered by the tenant-isolation test."""
    params = case.path_parameters or {}
    segments = case.operation.path.strip("/").split("/")
    for name in params:
        if name in world:
            params[name] = world[name]
        elif f"{{{name}}}" in segments:
            collection = segments[segments.index(f"{{{name}}}") - 1]
            if collection in world:
                params[name] = world[collection]


def _assert_answer_is_sound(case, response) -> None:
    where = f"{case.method} {case.formatted_path} body={case.body!r} query={case.query!r}"
    assert response.status_code < 500, f"{where} -> {response.status_code}: {response.text[:500]}"
    if response.status_code >= 400:
        try:
            body = json.loads(response.text)
        except ValueError:
            pytest.fail(f"{where} -> {response.status_code} is not JSON: {response.text[:300]}")
        error = body.get("error") if isinstance(body, dict) else None
        assert isinstance(error, dict) and set(error) == {"code", "message", "fields"}, f"{where} -> {body}"
        assert isinstance(error["message"], str) and error["message"], f"{where} -> {body}"
        if error["code"] == "validation_error":
            assert error["fields"], f"{where}: a 400 must say which fields are wrong -> {body}"


def _fuzz(operation, mode: GenerationMode, raw_key: str, world: dict) -> None:
    @settings(
        max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        _point_at_real_rows(case, world)
        # A savepoint per request: a failing one must not abort the test's transaction
        # and turn every later request into a misleading error.
        savepoint = transaction.savepoint()
        response = case.call(headers={"Authorization": f"Bearer {raw_key}"})
        if response.status_code >= 500:
            transaction.savepoint_rollback(savepoint)
        else:
            transaction.savepoint_commit(savepoint)
        _assert_answer_is_sound(case, response)

    run()


@pytest.mark.django_db
@pytest.mark.usefixtures("wsgi_in_test_transaction")
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("caller", ["platform key", "organisation key"])
def test_no_request_is_answered_with_a_5xx_and_every_4xx_has_the_error_format(caller, operation, mode, org, world):
    raw_key = make_api_key(None if caller == "platform key" else org)[1]
    _fuzz(operation, mode, raw_key, world)


def test_the_schema_covers_the_api():
    paths = {param.values[0].path for param in OPERATIONS}
    assert {"/api/v1/organization", "/api/v1/organizations/{id}", "/api/v1/api-keys"} <= paths
