"""CloudEvents 1.0 in (issue 18, item 4): `POST /api/v1/events` in structured mode and in
the JSON batch format, through the native ingest path, deduplicated on (source, id).

Events are written by the official CloudEvents SDK (`cloudevents` on PyPI: its v1
`CloudEvent`, `JSONFormat` and the HTTP binding's `to_structured`), so what is tested is
what a real producer sends, not a dict of our own making; its reader is the oracle for
what a valid CloudEvents 1.0 envelope is."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest
from cloudevents.core.bindings.http import to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from django.db import connection

from pricing.models import ResourceState
from usage.cloudevents import dedup_digest, is_uri_reference
from usage.ingest import MAX_BATCH, events_ingest
from usage.models import Metric, Resource, StateInterval, UsageEvent
from usage.tests.conftest import at
from usage.tests.factories import ProductFactory, add_price

pytestmark = pytest.mark.django_db

STRUCTURED, BATCH = "application/cloudevents+json", "application/cloudevents-batch+json"
SOURCE = "/platform/eu-1"
FORMAT = JSONFormat()


@pytest.fixture
def flavour(db):
    product = ProductFactory(code="cpu-4")
    add_price(product, "1.20", valid_from=at(0, 0, day=(2026, 1, 1)))
    return product


def event(event_id: str, type_: str, subject: str = "srv-1", when: datetime | None = None,
          data: dict | None = None, source: str = SOURCE, **attributes) -> CloudEvent:
    return CloudEvent({"id": event_id, "source": source, "type": f"com.cloudbill.resource.{type_}",
                       "subject": subject, "time": when or at(10, 0), **attributes}, data)


def structured(client, ce: CloudEvent):
    message = to_structured(ce, FORMAT)
    assert message.headers["content-type"] == STRUCTURED
    return client.post("/api/v1/events", data=message.body, content_type=message.headers["content-type"])


def batch_body(*events: CloudEvent | dict) -> bytes:
    """The JSON batch format: an array of events, each as the SDK writes it."""
    return json.dumps([json.loads(FORMAT.write(e)) if isinstance(e, CloudEvent) else e for e in events]).encode()


def post_batch(client, *events: CloudEvent | dict):
    return client.post("/api/v1/events", data=batch_body(*events), content_type=BATCH)


def statuses(body: dict) -> list[tuple]:
    return [(r["id"], r.get("source"), r["status"]) for r in body["results"]]


def create(org) -> CloudEvent:
    return event("c1", "created", data={"organization": org.pk, "product": "cpu-4", "name": "web"}, when=at(9, 0))


def test_a_structured_cloudevent_is_ingested_as_the_native_event_its_type_names(org, flavour, clock, platform_api):
    response = structured(platform_api, create(org))
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": 0,
                               "results": [{"id": "c1", "source": SOURCE, "status": "accepted"}]}
    response = structured(platform_api, event("s1", "started", when=at(10, 17)))
    assert response.json()["results"] == [{"id": "s1", "source": SOURCE, "status": "accepted"}]

    server = Resource.objects.get(external_id="srv-1")
    assert (server.organization, server.name, server.product.code) == (org, "web", "cpu-4")
    assert server.state == ResourceState.RUNNING
    stored = UsageEvent.objects.get(event_id="s1")
    assert (stored.type, stored.source, stored.occurred_at) == ("started", SOURCE, at(10, 17))
    assert list(StateInterval.objects.order_by("started_at").values_list("eff_state", flat=True)) == [
        "provisioning", "running"]


def test_a_batch_answers_each_event_and_a_bad_one_never_sinks_the_good_ones(org, flavour, clock, platform_api):
    Metric.objects.create(code="egress-gb", name="Egress", unit="GB", product=ProductFactory(code="egress"))
    structured(platform_api, create(org))
    wrong_version = {**json.loads(FORMAT.write(event("v1", "started"))), "specversion": "0.3"}
    response = post_batch(
        platform_api,
        event("b1", "started", when=at(10, 17)),
        wrong_version,
        event("b2", "metered", when=at(11, 0), data={"metric": "egress-gb", "quantity": "12.5"}),
        event("b3", "stopped", subject="nobody"),
        "not an event",
        event("b4", "metered", data={"metric": "egress-gb", "quantity": "-1"}),
        event("b5", "stopped", when=at(23, 6)),  # six minutes in the future
        event("b6", "stopped", data={"colour": "red"}),
        {k: v for k, v in json.loads(FORMAT.write(event("b7", "stopped"))).items() if k != "source"},
        event("b8", "stopped", when=at(13, 42)),
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert statuses(body) == [
        ("b1", SOURCE, "accepted"), ("v1", SOURCE, "rejected"), ("b2", SOURCE, "accepted"),
        ("b3", SOURCE, "rejected"), (None, None, "rejected"), ("b4", SOURCE, "rejected"),
        ("b5", SOURCE, "rejected"), ("b6", SOURCE, "rejected"), ("b7", None, "rejected"),
        ("b8", SOURCE, "accepted")]
    reasons = [r.get("reason") for r in body["results"]]
    assert reasons[1] == 'specversion: must be "1.0" (CloudEvents 1.0).'
    assert reasons[3].startswith("subject: unknown resource nobody")
    assert reasons[4] == "each event must be a CloudEvent (a JSON object)."
    assert reasons[5] == "data.quantity: must be between 0 and 10^18 with at most 12 decimal places."
    assert reasons[6] == "time: more than 5 minutes in the future."
    assert reasons[7] == "data.colour: unknown field for a stopped event."
    assert reasons[8] == "source: this attribute is required."
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (3, 0, 7)
    metered = UsageEvent.objects.get(event_id="b2")
    assert (metered.metric, metered.quantity) == ("egress-gb", Decimal("12.5"))
    assert Resource.objects.get(external_id="srv-1").state == ResourceState.STOPPED


def test_the_same_source_and_id_is_a_duplicate_across_structured_and_batch(org, flavour, clock, platform_api):
    structured(platform_api, create(org))
    first = structured(platform_api, event("s1", "started", when=at(10, 17)))
    assert first.json()["accepted"] == 1
    # The same (source, id) in a batch, even saying something else: duplicate, changes nothing.
    again = post_batch(platform_api, event("s1", "stopped", when=at(12, 0)), event("c1", "deleted"))
    assert statuses(again.json()) == [("s1", SOURCE, "duplicate"), ("c1", SOURCE, "duplicate")]
    # Twice in one batch: the second is a duplicate.
    twice = post_batch(platform_api, event("s2", "stopped", when=at(13, 0)), event("s2", "stopped", when=at(13, 0)))
    assert statuses(twice.json()) == [("s2", SOURCE, "accepted"), ("s2", SOURCE, "duplicate")]
    # And structured after the batch.
    assert structured(platform_api, event("s2", "stopped", when=at(13, 0))).json()["duplicates"] == 1
    assert UsageEvent.objects.filter(event_id="s1").count() == 1
    assert Resource.objects.get(external_id="srv-1").state == ResourceState.STOPPED


def test_the_same_id_from_another_source_or_natively_is_another_event(org, flavour, clock, platform_api):
    """(source, id) identifies a CloudEvent: an id another source also uses, or a native
    event's id, is not a duplicate of it (and a native id is still deduplicated natively)."""
    structured(platform_api, create(org))
    response = post_batch(platform_api, event("x1", "started", when=at(10, 17)),
                          event("x1", "stopped", when=at(11, 0), source="/platform/us-1"),
                          event("x1", "started", when=at(12, 0), source="urn:cloudbill:platform:eu-2"))
    assert statuses(response.json()) == [("x1", SOURCE, "accepted"), ("x1", "/platform/us-1", "accepted"),
                                         ("x1", "urn:cloudbill:platform:eu-2", "accepted")]
    native = platform_api.post("/api/v1/events", {"events": [
        {"id": "x1", "type": "stopped", "resource": "srv-1", "timestamp": at(13, 0).isoformat()}]}, format="json")
    assert native.json()["results"] == [{"id": "x1", "status": "accepted"}]
    native_again = platform_api.post("/api/v1/events", {"events": [
        {"id": "x1", "type": "stopped", "resource": "srv-1", "timestamp": at(13, 0).isoformat()}]}, format="json")
    assert native_again.json()["results"] == [{"id": "x1", "status": "duplicate"}]
    assert sorted(UsageEvent.objects.filter(event_id="x1").values_list("source", flat=True)) == [
        "", "/platform/eu-1", "/platform/us-1", "urn:cloudbill:platform:eu-2"]


def test_a_stored_cloudevent_is_a_duplicate_whatever_the_rest_of_it_says_now(org, flavour, clock, platform_api):
    """As for native ids, the identity is checked before anything else in the item."""
    structured(platform_api, create(org))
    structured(platform_api, event("s1", "started", when=at(10, 17)))
    clock.shift(8 * 86400)  # its time is now too old, its type unknown, its data wrong
    again = structured(platform_api, event("s1", "exploded", when=at(10, 17), data={"colour": "red"}))
    assert statuses(again.json()) == [("s1", SOURCE, "duplicate")]


def test_dedup_keys_of_the_two_formats_never_meet(db):
    """A native id's key is md5(id); a CloudEvent's md5(source, NUL, id). No native id holds
    a NUL, so no (source, id) has a native id's key; and the NUL keeps the pairs apart."""
    assert dedup_digest("a") != dedup_digest("a", "/s")
    assert dedup_digest("b/c", "/a") != dedup_digest("c", "/a/b")
    # The only native id with a CloudEvent's key would hold a NUL, and such an id is refused.
    assert dedup_digest("/a\x00b") == dedup_digest("b", "/a")
    refused = events_ingest(items=[{"id": "/a\x00b", "type": "started", "resource": "srv-1",
                                    "timestamp": "2026-03-10T10:00:00Z"}])
    assert refused.results == [{"id": None, "status": "rejected",
                                "reason": "id: contains a NUL character or invalid Unicode."}]

    with connection.cursor() as cursor:  # a native key is what PostgreSQL's md5(id)::uuid wrote before
        cursor.execute("SELECT md5(%s)", ["évt-1"])
        assert dedup_digest("évt-1") == cursor.fetchone()[0]


def test_what_the_sdk_refuses_as_a_cloudevent_is_refused_item_by_item(org, flavour, clock, platform_api):
    """The SDK's reader (CloudEvents 1.0) is the oracle: every envelope it refuses is
    rejected here, naming an attribute it named, and the batch's good event still goes in.
    (The SDK fills in a missing id, specversion or time when it builds an event; reading
    one without them is refused here: `test_cloudevent_attributes_are_checked_per_the_spec`.)"""
    structured(platform_api, create(org))
    good = json.loads(FORMAT.write(event("g1", "started", when=at(10, 17))))
    cases = {
        "empty-id": {**good, "id": ""},
        "number-id": {**good, "id": 7},
        "empty-source": {**good, "source": "", "id": "e-src"},
        "number-source": {**good, "source": 5, "id": "n-src"},
        "no-type": {k: v for k, v in {**good, "id": "no-type"}.items() if k != "type"},
        "empty-type": {**good, "type": "", "id": "empty-type"},
        "version-03": {**good, "specversion": "0.3", "id": "v03"},
        "version-number": {**good, "specversion": 1.0, "id": "vnum"},
        "naive-time": {**good, "time": "2026-03-10T10:17:00", "id": "naive"},
        "empty-subject": {**good, "subject": "", "id": "esub"},
        "bad-extension-name": {**good, "Region": "eu", "id": "ext"},
        "dashed-extension": {**good, "trace-id": "x", "id": "ext2"},
        "empty-datacontenttype": {**good, "datacontenttype": "", "id": "edct"},
    }
    refused_by_sdk = {}
    for name, body in cases.items():
        try:
            FORMAT.read(CloudEvent, json.dumps(body))
        except Exception as exc:  # noqa: BLE001 - any refusal (validation, a time it cannot parse)
            refused_by_sdk[name] = set(getattr(exc, "errors", {}) or {"time"})
    assert set(refused_by_sdk) == set(cases), set(cases) - set(refused_by_sdk)

    response = post_batch(platform_api, *cases.values(), good)
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[-1] == {"id": "g1", "source": SOURCE, "status": "accepted"}
    for (name, attributes), result in zip(refused_by_sdk.items(), results, strict=False):
        assert result["status"] == "rejected", (name, result)
        named = result["reason"].split(":", 1)[0]
        assert named in attributes, (name, result["reason"], attributes)


def test_what_the_sdk_writes_for_every_type_is_read_as_that_type(org, flavour, clock, platform_api):
    """Every native type through the SDK, with its data: each is accepted (or refused for a
    business reason only, never for its shape)."""
    ProductFactory(code="ip-1")
    ProductFactory(code="cpu-8")
    Metric.objects.create(code="egress-gb", name="Egress", unit="GB", product=ProductFactory(code="egress"))
    data = {"created": {"organization": org.pk, "product": "cpu-4", "kind": "server", "name": "web"},
            "resized": {"product": "cpu-8"}, "addon_attached": {"product": "ip-1"},
            "addon_detached": {"product": "ip-1"}, "metered": {"metric": "egress-gb", "quantity": 3}}
    order = ["created", "started", "resized", "addon_attached", "addon_detached", "metered", "hibernated",
             "resumed", "stopped", "error", "deleted"]
    events = [event(f"t-{t}", t, when=at(9, minute), data=data.get(t), datacontenttype="application/json")
              for minute, t in enumerate(order)]
    response = post_batch(platform_api, *events)
    body = response.json()
    assert body["accepted"] == len(order), body
    assert list(UsageEvent.objects.filter(source=SOURCE).order_by("occurred_at").values_list("type", flat=True)) \
        == order
    assert Resource.objects.get(external_id="srv-1").state == ResourceState.DELETED


def test_cloudevent_attributes_are_checked_per_the_spec(org, flavour, clock, platform_api):
    structured(platform_api, create(org))
    good = json.loads(FORMAT.write(event("g", "started", when=at(10, 17))))
    cases = [
        ({k: v for k, v in good.items() if k != "id"}, "id: this attribute is required."),
        ({k: v for k, v in {**good, "id": "r0"}.items() if k != "specversion"},
         'specversion: this attribute is required ("1.0").'),
        ({**good, "id": "r1", "data_base64": "AAEC"}, "data_base64: binary data is not taken"),
        ({**good, "id": "r2", "datacontenttype": "text/plain"}, "datacontenttype: only JSON data"),
        ({**good, "id": "r3", "time": "10 March 2026"}, "time: must be an RFC 3339 timestamp"),
        ({k: v for k, v in {**good, "id": "r4"}.items() if k != "time"}, "time: this attribute is required"),
        ({k: v for k, v in {**good, "id": "r5"}.items() if k != "subject"}, "subject: this attribute is required"),
        ({**good, "id": "r6", "source": "not a uri"}, "source: must be a URI-reference"),
        ({**good, "id": "r7", "type": "com.example.started"}, "type: must be com.cloudbill.resource.<type>"),
        ({**good, "id": "r8", "data": [1, 2]}, "data: must be a JSON object"),
        ({**good, "id": "r9", "data": {"resource": "srv-2"}}, "data.resource: unknown field"),
        ({**good, "id": "r10", "region": {"nested": 1}}, "region: an extension attribute must be"),
        ({**good, "id": "r11", "big": 2 ** 31}, "big: an extension attribute must be"),
        ({**good, "id": "x" * 201}, "id: must be a string of 1 to 200 characters."),
        ({**good, "id": "r12", "source": "/" + "s" * 500}, "source: must be a URI-reference of 1 to 500"),
        ({**good, "id": "r13", "dataschema": "a b"}, "dataschema: must be a URI."),
    ]
    accepted = [
        {**good, "id": "ok1", "region": "eu", "sampled": True, "seq": 4},  # extensions, not used
        {**good, "id": "ok2", "type": "resumed"},  # the bare native type
        {**good, "id": "ok3", "dataschema": None, "data": None},  # null is absent (JSON format)
        {**good, "id": "ok4", "time": "2026-03-10t11:00:00.250+01:00", "datacontenttype": "application/json; charset=utf-8"},
    ]
    response = post_batch(platform_api, *(body for body, _ in cases), *accepted)
    results = response.json()["results"]
    for (body, expected), result in zip(cases, results, strict=False):
        assert result["status"] == "rejected" and result["reason"].startswith(expected), (body, result)
    assert [r["status"] for r in results[len(cases):]] == ["accepted"] * len(accepted), results[len(cases):]
    assert UsageEvent.objects.get(event_id="ok4").occurred_at == at(10, 0, 0).replace(microsecond=250000)


def test_the_bodies_that_are_not_cloudevents_at_all_are_a_400(platform_api, db):
    for content_type, body in ((STRUCTURED, b"[]"), (STRUCTURED, b"7"), (BATCH, b"{}"), (BATCH, b"{bad json"),
                               (BATCH, json.dumps([{}] * (MAX_BATCH + 1)).encode())):
        response = platform_api.post("/api/v1/events", data=body, content_type=content_type)
        assert response.status_code == 400, (content_type, body[:20], response.content)
        assert response.json()["error"]["code"] in ("validation_error", "parse_error")
    empty = platform_api.post("/api/v1/events", data=b"[]", content_type=BATCH)
    assert empty.json() == {"accepted": 0, "duplicates": 0, "rejected": 0, "results": []}
    binary = platform_api.post("/api/v1/events", data=b"{}", content_type="application/json",
                               HTTP_CE_SPECVERSION="1.0", HTTP_CE_ID="x")
    assert binary.status_code == 400 and "binary mode" in binary.json()["error"]["message"] + json.dumps(
        binary.json()["error"]["fields"])


def test_customers_cannot_send_cloudevents(org, make_key, api):
    from accounts.scopes import ORGANIZATION_SCOPES

    response = api(make_key(org, ORGANIZATION_SCOPES)).post("/api/v1/events", data=batch_body(), content_type=BATCH)
    assert response.status_code == 403


def test_uri_references():
    for ok in ("/platform/eu-1", "urn:cloudbill:eu", "https://platform.example/a?b=c#d", "a%20b", "mailto:x@y"):
        assert is_uri_reference(ok), ok
    for bad in ("not a uri", "1abc:x", "a#b#c", "%zz", "é"):
        assert not is_uri_reference(bad), bad


def test_the_ingest_function_takes_cloudevents_as_dicts_too(org, flavour, clock):
    """The parsed body is what ingest takes: a batch of dicts, as the parser gives them."""
    result = events_ingest(items=[json.loads(FORMAT.write(create(org)))], cloudevents=True)
    assert result.results == [{"id": "c1", "source": SOURCE, "status": "accepted"}]


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict:
    import yaml
    from django.core.management import call_command

    out = tmp_path_factory.mktemp("schema") / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    return yaml.safe_load(out.read_text())


def test_the_schema_documents_both_cloudevents_content_types(schema, org, flavour, clock, platform_api):
    """Both media types are in the request body; the CloudEvent component's example
    validates against it, is what the SDK reads as a CloudEvent, and ingest accepts it
    (given its resource and metric); the answer matches the documented result."""
    import jsonschema

    from core.tests.test_schema import assert_answer_matches_schema

    content = schema["paths"]["/api/v1/events"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", STRUCTURED, BATCH}
    assert content[STRUCTURED]["schema"] == {"$ref": "#/components/schemas/CloudEvent"}
    assert content[BATCH]["schema"]["items"] == {"$ref": "#/components/schemas/CloudEvent"}
    assert content[BATCH]["schema"]["maxItems"] == MAX_BATCH
    component = schema["components"]["schemas"]["CloudEvent"]
    assert set(component["required"]) == {"specversion", "id", "source", "type", "subject", "time"}
    assert "com.cloudbill.resource.addon_attached" in component["properties"]["type"]["enum"]
    example = {**component["example"], "subject": "srv-1", "time": at(10, 30).isoformat().replace("+00:00", "Z")}
    jsonschema.validate([example], {**content[BATCH]["schema"], "components": schema["components"]})
    FORMAT.read(CloudEvent, json.dumps(example))  # the SDK reads it too

    structured(platform_api, create(org))
    Metric.objects.create(code=example["data"]["metric"], name="Egress", unit="GB", product=ProductFactory(code="eg"))
    response = platform_api.post("/api/v1/events", data=json.dumps([example]), content_type=BATCH)
    assert response.json()["results"] == [{"id": example["id"], "source": example["source"], "status": "accepted"}]
    assert_answer_matches_schema(schema, "/api/v1/events", "post", response)
