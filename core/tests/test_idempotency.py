"""`@idempotent` as a reusable piece, on a view of its own (the organisation endpoints'
replay, conflict and concurrency cases are in accounts/tests/test_api_base.py)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from accounts.models import Organization
from accounts.tests.factories import UserFactory
from core.api.idempotency import idempotent, purge_expired
from core.models import IdempotencyRecord


class MakeOrganization(APIView):
    """Creates an organisation named in the body; `fail` makes it raise after writing."""

    required_scopes = {"POST": "authenticated"}

    @idempotent
    def post(self, request):
        org = Organization.objects.create(name=request.data["name"], slug=request.data["name"].lower())
        if request.data.get("fail"):
            raise RuntimeError("crash after the write")
        if request.data.get("server_error"):
            return Response({"detail": "upstream down"}, status=502)
        return Response({"id": org.pk}, status=201)


def _post(user, body, key="k"):
    request = APIRequestFactory().post("/x", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    force_authenticate(request, user=user)
    return MakeOrganization.as_view()(request)


@pytest.mark.django_db
class TestIdempotent:
    def test_a_crash_after_the_write_keeps_neither_the_write_nor_the_key(self):
        user = UserFactory()
        with pytest.raises(RuntimeError):
            _post(user, {"name": "Crash", "fail": True})
        assert not Organization.objects.filter(name="Crash").exists()
        assert not IdempotencyRecord.objects.exists()
        assert _post(user, {"name": "Crash"}).status_code == 201  # the key is free: a retry runs anew

    def test_a_5xx_answer_is_not_stored_and_its_writes_are_undone(self):
        user = UserFactory()
        assert _post(user, {"name": "Down", "server_error": True}).status_code == 502
        assert not Organization.objects.filter(name="Down").exists()
        assert not IdempotencyRecord.objects.exists()

    def test_a_key_older_than_its_lifetime_is_new_again(self, settings):
        user = UserFactory()
        first = _post(user, {"name": "Old"})
        with time_machine.travel(timezone.now() + settings.IDEMPOTENCY_KEY_TTL + timedelta(seconds=1)):
            again = _post(user, {"name": "Newer"})
        assert first.status_code == again.status_code == 201
        assert again.data["id"] != first.data["id"]

    def test_purging_removes_only_expired_records(self, settings):
        user = UserFactory()
        _post(user, {"name": "A"}, key="a")
        with time_machine.travel(timezone.now() + settings.IDEMPOTENCY_KEY_TTL + timedelta(minutes=1)):
            _post(user, {"name": "B"}, key="b")
            assert purge_expired() == 1
        assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["b"]

    def test_purging_deletes_in_bounded_batches_and_a_capped_pass_leaves_the_rest_for_the_next(self, settings):
        expired = timezone.now() - settings.IDEMPOTENCY_KEY_TTL - timedelta(minutes=1)
        for i in range(5):
            IdempotencyRecord.objects.create(caller="user:1", key=f"old-{i}", method="POST", path="/x",
                                             fingerprint="f", status_code=201)
        IdempotencyRecord.objects.update(created_at=expired)
        IdempotencyRecord.objects.create(caller="user:1", key="fresh", method="POST", path="/x", fingerprint="f",
                                         status_code=201)
        with CaptureQueriesContext(connection) as queries:
            assert purge_expired(batch_size=2, max_batches=2) == 4
        assert [q["sql"].split()[0] for q in queries.captured_queries] == ["DELETE", "DELETE"]
        assert purge_expired(batch_size=2) == 1
        assert purge_expired(batch_size=2) == 0  # run again: nothing left to do
        assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["fresh"]

    def test_without_the_header_nothing_is_recorded(self):
        request = APIRequestFactory().post("/x", {"name": "Plain"}, format="json")
        force_authenticate(request, user=UserFactory())
        assert MakeOrganization.as_view()(request).status_code == 201
        assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_and_different_bodies_do_one_thing():
    """Eight clients race with the same key, four bodies: the first commits, the ones
    with its body replay it, the others are refused with 422; one organisation exists."""
    user = UserFactory()
    barrier = threading.Barrier(8)
    answers: list[tuple[str, int]] = []

    def call(name: str) -> None:
        try:
            barrier.wait()
            answers.append((name, _post(user, {"name": name}, key="race").status_code))
        finally:
            connection.close()

    names = ["Alpha", "Beta", "Gamma", "Delta"] * 2
    threads = [threading.Thread(target=call, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    [winner] = Organization.objects.values_list("name", flat=True)
    assert sorted(code for name, code in answers if name == winner) == [201, 201]
    assert {code for name, code in answers if name != winner} == {422}
