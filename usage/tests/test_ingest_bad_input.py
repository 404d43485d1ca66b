"""One bad event never sinks its batch: text PostgreSQL cannot store, time zones it
cannot represent and numbers beyond its columns are rejected item by item, over the API
too, and every valid event beside them is stored (issue "Trust", finding 3)."""

from __future__ import annotations

import json
from datetime import timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from usage.ingest import events_ingest
from usage.models import Resource, UsageEvent
from usage.tests.conftest import at
from usage.tests.factories import ProductFactory, add_price

pytestmark = pytest.mark.django_db

NOW = at(23, 0)


@pytest.fixture
def flavour(db):
    product = ProductFactory(code="cpu-4")
    add_price(product, "1.20", valid_from=at(0, 0, day=(2026, 1, 1)))
    return product


def good(org, n: int) -> list[dict]:
    return [{"id": f"good-{n}-c", "type": "created", "resource": f"srv-{n}", "organization": org.pk,
             "product": "cpu-4", "timestamp": at(10, 0).isoformat()},
            {"id": f"good-{n}-s", "type": "started", "resource": f"srv-{n}", "timestamp": at(10, 5).isoformat()}]


@pytest.mark.parametrize("bad", [
    {"id": "nul-in-resource", "type": "started", "resource": "srv\x00x", "timestamp": at(10, 0).isoformat()},
    {"id": "nul\x00in-id", "type": "started", "resource": "srv-1", "timestamp": at(10, 0).isoformat()},
    {"id": "surrogate", "type": "started", "resource": "srv-\ud800", "timestamp": at(10, 0).isoformat()},
    {"id": "nul-in-name", "type": "created", "resource": "srv-9", "organization": "ORG", "product": "cpu-4",
     "name": "a\x00b", "timestamp": at(10, 0).isoformat()},
    {"id": "huge-org", "type": "created", "resource": "srv-8", "organization": 10 ** 30, "product": "cpu-4",
     "timestamp": at(10, 0).isoformat()},
], ids=["NUL in resource", "NUL in id", "lone surrogate", "NUL in name", "organization beyond bigint"])
def test_text_postgresql_cannot_store_is_rejected_and_the_good_events_are_kept(org, flavour, bad):
    bad = {k: org.pk if v == "ORG" else v for k, v in bad.items()}
    result = events_ingest(items=[*good(org, 1), bad, *good(org, 2)], now=NOW)
    assert [r["status"] for r in result.results] == ["accepted", "accepted", "rejected", "accepted", "accepted"]
    assert UsageEvent.objects.count() == 4


def test_an_offset_postgresql_cannot_store_is_the_same_instant_in_utc(org, flavour):
    # +16:00 is valid ISO 8601 and Python, but beyond PostgreSQL's ±15:59 for timestamptz.
    far_east = (at(10, 0) + timedelta(hours=16)).replace(tzinfo=timezone(timedelta(hours=16)))
    events = good(org, 1)
    events[1]["timestamp"] = far_east.isoformat()
    result = events_ingest(items=events, now=NOW)
    assert [r["status"] for r in result.results] == ["accepted", "accepted"]
    assert UsageEvent.objects.get(event_id="good-1-s").occurred_at == at(10, 0)


def test_over_the_api_a_bad_id_is_answered_and_the_batch_kept(org, flavour, api, make_key, clock):
    body = json.dumps({"events": [*good(org, 1), {"id": "x\ud800", "type": "started", "resource": "srv-1",
                                                  "timestamp": at(10, 0).isoformat()}]})
    response = api(make_key(None)).generic("POST", "/api/v1/events", body, content_type="application/json")
    assert response.status_code == 200, response.content[:300]
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "accepted", "rejected"]


text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=12)
offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(resource=text, name=text, metric=text, event_id=text, product=text, offset=offsets,
       quantity=st.one_of(text, st.integers(min_value=-(10 ** 25), max_value=10 ** 25)))
def test_arbitrary_unicode_and_offsets_in_every_field_never_raise_and_valid_events_are_accepted(
        org, flavour, resource, name, metric, event_id, product, offset, quantity):
    when = at(10, 0).astimezone(offset).isoformat()
    batch = [
        *good(org, 1),
        {"id": event_id or "e", "type": "created", "resource": resource or "r", "organization": org.pk,
         "product": product, "name": name, "timestamp": when},
        {"id": f"m-{event_id}", "type": "metered", "resource": "srv-1", "metric": metric,
         "quantity": quantity, "timestamp": when},
        {"id": f"s-{event_id}", "type": "stopped", "resource": resource or "r", "timestamp": when},
    ]
    result = events_ingest(items=batch, now=NOW)  # never raises
    assert [r["status"] for r in result.results][:2] in (["accepted", "accepted"], ["duplicate", "duplicate"])
    assert Resource.objects.filter(external_id="srv-1").exists()
    json.dumps(result.as_dict(), ensure_ascii=False).encode("utf-8")  # the answer can be sent
