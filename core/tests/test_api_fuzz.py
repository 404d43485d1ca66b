"""Schema-driven fuzzing (RELIABILITY.md: "malformed input is a 4xx with field messages,
never a 5xx"). Schemathesis reads /api/schema/ from the WSGI app and generates requests
for every operation, valid and invalid ones, as an integrator with a platform key and as
a customer with an organisation key, against a world with a real row behind every id
(core/tests/fuzz_world.py). Every answer must not be a 5xx, must match the documented
status codes, content type and response schema, and every 4xx must be in the one error
format. A new endpoint joins by being in the schema.

One test per operation, FUZZ_EXAMPLES (default 50) derandomized examples each, so CI is
bounded and a failure reproduces. A deep run: `FUZZ_BUDGET=500` (examples per operation,
randomized); `FUZZ_REPORT=path.json` writes per-operation figures (docs/core.md).
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.scopes import SCOPES
from accounts.tests.factories import MembershipFactory, OrganizationFactory, UserFactory, make_api_key
from core.tests.fuzz_world import build_world, point_at_real_rows

FUZZ_BUDGET = os.environ.get("FUZZ_BUDGET")
EXAMPLES = int(FUZZ_BUDGET or os.environ.get("FUZZ_EXAMPLES", "50"))
DERANDOMIZE = FUZZ_BUDGET is None
FUZZ_REPORT = os.environ.get("FUZZ_REPORT")

# Known defects: operation -> checks whose failures are counted and reported but do not fail
# the test ("*": every operation). Empty: every defect the outside test found is fixed (issue
# 12); an entry added here must say why and name the issue that fixes it.
KNOWN_DEFECTS: dict[str, set[str]] = {
    "*": set(),
}

# The keys of the error object; `required_scope` only on a 403 for a missing scope.
ERROR_KEYS = {"code", "message", "fields", "required_scope"}

CHECKS = {
    "status_code_conformance": status_code_conformance,
    "content_type_conformance": content_type_conformance,
    "response_schema_conformance": response_schema_conformance,
}

SCHEMA = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
OPERATIONS = [
    pytest.param(op, id=f"{op.method.upper()} {op.path}")
    for op in (result.ok() for result in SCHEMA.get_all_operations())
]
FIGURES: dict[str, Counter] = {}


@pytest.fixture
def wsgi_in_test_transaction():
    """Django's handler closes the connection after each request; inside a test that
    would end the test's transaction. The test client unhooks the same signal."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _error_format_problem(response) -> str | None:
    if response.status_code < 400:
        return None
    try:
        body = json.loads(response.text)
    except ValueError:
        return f"{response.status_code} is not JSON: {response.text[:200]}"
    error = body.get("error") if isinstance(body, dict) else None
    if not (isinstance(error, dict) and {"code", "message", "fields"} <= set(error) <= ERROR_KEYS):
        return f"not the error format: {body}"
    if "required_scope" in error and not (response.status_code == 403 and error["required_scope"] in SCOPES):
        return f"required_scope is for a 403 and names a scope: {body}"
    if not (isinstance(error["message"], str) and error["message"]):
        return f"no message: {body}"
    if error["code"] == "validation_error" and not error["fields"]:
        return f"a 400 must say which fields are wrong: {body}"
    return None


def _problems(case, response) -> dict[str, str]:
    found: dict[str, str] = {}
    if response.status_code >= 500:
        found["not_a_server_error"] = f"{response.status_code}: {response.text[:300]}"
    if problem := _error_format_problem(response):
        found["error_format"] = problem
    for name, check in CHECKS.items():
        try:
            case.validate_response(response, checks=[check])
        except (Exception, FailureGroup) as exc:  # a FailureGroup is a BaseExceptionGroup
            subs = getattr(exc, "exceptions", None) or [exc]
            found[name] = " | ".join(str(sub)[:400] for sub in subs)
    return found


def _fuzz(operation, keys: list[str], world: dict) -> tuple[Counter, dict[str, str]]:
    label = f"{operation.method.upper()} {operation.path}"
    known = KNOWN_DEFECTS.get(label, set()) | KNOWN_DEFECTS["*"]
    figures: Counter = Counter()
    failures: dict[str, str] = {}
    rng = random.Random(label)
    strategy = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=DERANDOMIZE,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, key=st.sampled_from(keys))
    def run(case, key):
        point_at_real_rows(case, world, rng)
        # A savepoint per request: a failing one must not abort the test's transaction
        # and turn every later request into a misleading error.
        savepoint = transaction.savepoint()
        response = case.call(headers={"Authorization": f"Bearer {key}"})
        if response.status_code >= 500:
            transaction.savepoint_rollback(savepoint)
        else:
            transaction.savepoint_commit(savepoint)
        figures["examples"] += 1
        figures[f"status_{response.status_code // 100}xx"] += 1
        for name, message in _problems(case, response).items():
            figures[name] += 1
            if name not in known:
                where = f"{case.method} {case.formatted_path} body={case.body!r} query={case.query!r}"
                failures.setdefault(name, f"{where} -> {message}")

    run()
    FIGURES[label] = figures
    return figures, failures


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """One world for the module, built once inside a transaction that is rolled back at
    the end; each operation's test runs in a savepoint of it (see `in_world`)."""
    with django_db_blocker.unblock(), transaction.atomic():
        org = OrganizationFactory()

        def make_member(organization, role):
            return MembershipFactory(organization=organization, role=role, user=UserFactory())

        rows = build_world(org, make_member)
        keys = [make_api_key(org)[1], make_api_key(None)[1]]
        yield rows, keys
        transaction.set_rollback(True)


@pytest.fixture
def in_world(world, db):
    """`db` runs the test in a savepoint of the world's transaction, undone after it, so
    every operation meets the same world."""
    return world


@pytest.mark.usefixtures("wsgi_in_test_transaction")
@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_answer_is_no_5xx_matches_the_schema_and_errors_have_the_format(operation, in_world):
    rows, keys = in_world
    _figures, failures = _fuzz(operation, keys, rows)
    assert not failures, "\n\n".join(f"[{name}] {message}" for name, message in failures.items())


def test_the_schema_covers_the_api():
    paths = {param.values[0].path for param in OPERATIONS}
    assert {"/api/v1/organization", "/api/v1/invoices/{id}", "/api/v1/payments/{id}/refund"} <= paths


@pytest.fixture(scope="session", autouse=True)
def _write_fuzz_report():
    yield
    if FUZZ_REPORT and FIGURES:
        Path(FUZZ_REPORT).write_text(
            json.dumps(
                {
                    "examples_per_operation": EXAMPLES,
                    "operations": {k: dict(v) for k, v in sorted(FIGURES.items())},
                },
                indent=2,
            )
        )
