"""Deliveries against a real HTTP receiver (webhooks.receiver, a threading http.server on
127.0.0.1:0) that verifies every request with `standardwebhooks.Webhook(secret).verify`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from core.models import OutboxMessage
from webhooks import delivery, services
from webhooks.models import DeliveryStatus, EndpointStatus, WebhookDelivery, WebhookMessage
from webhooks.receiver import Receiver
from webhooks.tasks import deliver_due_task

pytestmark = pytest.mark.django_db

TOPUP = {"topup_id": 5, "source": "manual", "currency": "EUR", "amount": "50.00", "ledger_entry_id": 9}


def _endpoint(org, receiver, types=("topup.succeeded",)):
    ep = services.endpoint_create(organization=org, url=receiver.url, event_types=types)
    receiver.secrets = [ep.secret]
    return ep


def _emit(org, captured, **data):
    with captured(execute=True):
        with transaction.atomic():
            return services.emit(type="topup.succeeded", organization=org, data={**TOPUP, **data})


def test_an_event_arrives_signed_and_verifies_with_the_standardwebhooks_library(
        org, receiver, django_capture_on_commit_callbacks):
    ep = _endpoint(org, receiver)
    [message] = _emit(org, django_capture_on_commit_callbacks)

    [got] = receiver.received
    assert got.verified and got.status == 200
    assert got.webhook_id == message.public_id and message.public_id.startswith("msg_")
    assert got.payload == {"id": message.public_id, "type": "topup.succeeded", "version": 1,
                           "timestamp": got.payload["timestamp"], "sequence": message.pk,
                           "organization": org.pk, "data": TOPUP}
    assert got.headers["webhook-signature"].startswith("v1,")
    d = WebhookDelivery.objects.get(endpoint=ep)
    assert (d.status, d.attempts, d.last_status_code) == (DeliveryStatus.SUCCEEDED, 0, 200)
    [attempt] = d.attempt_log.all()
    assert attempt.response_status == 200 and attempt.request_body == message.body()
    assert attempt.request_headers["webhook-id"] == message.public_id
    assert "webhook-signature" in attempt.request_headers and "v1,…" == attempt.request_headers["webhook-signature"]


def test_a_wrong_secret_does_not_verify(org, receiver, django_capture_on_commit_callbacks):
    """The receiver's check is real: with another secret the request is rejected (400),
    and the delivery counts as failed and waits for a retry."""
    ep = _endpoint(org, receiver)
    receiver.secrets = [services.signing.new_secret()]
    _emit(org, django_capture_on_commit_callbacks)
    assert [r.verified for r in receiver.received] == [False]
    d = WebhookDelivery.objects.get(endpoint=ep)
    assert (d.status, d.attempts, d.last_status_code) == (DeliveryStatus.PENDING, 1, 400)


def test_500s_are_retried_with_the_same_webhook_id_until_a_2xx(
        org, receiver, fast_retries, django_capture_on_commit_callbacks):
    ep = _endpoint(org, receiver)
    receiver.script = [(500, 0), (503, 0)]
    [message] = _emit(org, django_capture_on_commit_callbacks)
    d = WebhookDelivery.objects.get(endpoint=ep)
    assert (d.status, d.attempts, d.last_status_code) == (DeliveryStatus.PENDING, 1, 500)

    with django_capture_on_commit_callbacks(execute=True):
        assert deliver_due_task() == 1
        assert deliver_due_task() == 1
        assert deliver_due_task() == 0

    assert [r.status for r in receiver.received] == [500, 503, 200]
    assert {r.webhook_id for r in receiver.received} == {message.public_id}
    assert all(r.verified for r in receiver.received)
    d.refresh_from_db()
    assert (d.status, d.attempts) == (DeliveryStatus.SUCCEEDED, 2)
    assert [a.response_status for a in d.attempt_log.order_by("id")] == [500, 503, 200]


def test_a_receiver_that_answers_too_late_is_a_failure_and_retried(
        org, receiver, fast_retries, django_capture_on_commit_callbacks):
    ep = _endpoint(org, receiver)
    receiver.script = [(200, 1.5)]  # longer than WEBHOOKS_TIMEOUT (0.5 s)
    _emit(org, django_capture_on_commit_callbacks)
    d = WebhookDelivery.objects.get(endpoint=ep)
    assert d.status == DeliveryStatus.PENDING and d.last_error.startswith("Timed out")
    assert d.attempt_log.get().response_status is None

    deliver_due_task()
    d.refresh_from_db()
    assert d.status == DeliveryStatus.SUCCEEDED
    assert [a.error[:9] for a in d.attempt_log.order_by("id")] == ["Timed out", ""]


def test_backoff_is_exponential_capped_and_ends_with_a_last_try_at_three_days(settings):
    assert [delivery.retry_delay(n) for n in range(1, 9)] == [
        timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=8), timedelta(minutes=32),
        timedelta(minutes=128), timedelta(minutes=512), timedelta(hours=12), timedelta(hours=12)]
    start = timezone.now()
    d = WebhookDelivery(window_started_at=start, attempts=7)
    assert settings.WEBHOOKS_RETRY_WINDOW == timedelta(days=3)
    assert delivery.next_attempt(d, start + timedelta(days=2, hours=20)) == start + timedelta(days=3)
    assert delivery.next_attempt(d, start + timedelta(days=3)) is None
    # The whole schedule: 13 tries in 3 days (7 in the first 12 hours, then every 12 h, then the last).
    at, tries = start, 1
    d.attempts = 0
    while True:
        d.attempts += 1
        at = delivery.next_attempt(d, at)
        if at is None:
            break
        tries += 1
    assert tries == 13


def test_a_delivery_failing_for_the_whole_window_disables_its_endpoint_and_emails_its_owners(
        org, make_member, receiver, fast_retries, django_capture_on_commit_callbacks):
    owner = make_member(org, "owner").user
    make_member(org, "viewer")
    ep = _endpoint(org, receiver)
    receiver.script = [(500, 0)] * 10
    _emit(org, django_capture_on_commit_callbacks)
    d = WebhookDelivery.objects.get(endpoint=ep)
    # Three days later, the last try fails too.
    WebhookDelivery.objects.filter(pk=d.pk).update(window_started_at=timezone.now() - timedelta(days=3))
    with django_capture_on_commit_callbacks(execute=True):
        deliver_due_task()

    d.refresh_from_db()
    ep.refresh_from_db()
    assert d.status == DeliveryStatus.FAILED
    assert ep.status == EndpointStatus.DISABLED and "HTTP 500" in ep.disabled_reason
    [email] = mail.outbox
    assert email.to == [owner.email] and ep.url in email.subject
    # A disabled endpoint gets nothing new, and its waiting deliveries stay put.
    assert _emit(org, django_capture_on_commit_callbacks) == []
    assert len(receiver.received) == 2


def test_an_endpoint_that_succeeded_meanwhile_is_not_disabled(
        org, receiver, fast_retries, django_capture_on_commit_callbacks):
    """One message the receiver always refuses (a bug on their side for one type) fails
    alone; the endpoint that accepts the others stays on."""
    ep = _endpoint(org, receiver)
    receiver.script = [(500, 0), (200, 0), (500, 0)]
    _emit(org, django_capture_on_commit_callbacks)
    _emit(org, django_capture_on_commit_callbacks, topup_id=6)
    first = WebhookDelivery.objects.filter(endpoint=ep).order_by("id").first()
    WebhookDelivery.objects.filter(pk=first.pk).update(window_started_at=timezone.now() - timedelta(days=3))
    with django_capture_on_commit_callbacks(execute=True):
        deliver_due_task()
    first.refresh_from_db()
    ep.refresh_from_db()
    assert first.status == DeliveryStatus.FAILED and ep.status == EndpointStatus.ENABLED
    assert mail.outbox == []


def test_replay_sends_a_delivered_message_again_with_the_same_webhook_id(
        org, receiver, django_capture_on_commit_callbacks):
    ep = _endpoint(org, receiver)
    [message] = _emit(org, django_capture_on_commit_callbacks)
    d = WebhookDelivery.objects.get(endpoint=ep)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.deliveries_replay(endpoint=ep, delivery_ids=[d.pk]) == 1
    assert [r.webhook_id for r in receiver.received] == [message.public_id] * 2
    assert all(r.verified for r in receiver.received)
    d.refresh_from_db()
    assert d.status == DeliveryStatus.SUCCEEDED and d.trigger == "replay"
    assert [a.trigger for a in d.attempt_log.order_by("id")] == ["event", "replay"]


def test_replaying_a_range_sends_only_the_messages_emitted_inside_it(
        org, receiver, django_capture_on_commit_callbacks):
    ep = _endpoint(org, receiver)
    for i in range(3):
        _emit(org, django_capture_on_commit_callbacks, topup_id=i)
    old, mid, new = WebhookMessage.objects.order_by("id")
    now = timezone.now()
    WebhookMessage.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=3))
    WebhookMessage.objects.filter(pk=mid.pk).update(created_at=now - timedelta(days=1))
    receiver.received.clear()
    with django_capture_on_commit_callbacks(execute=True):
        n = services.deliveries_replay(endpoint=ep, since=now - timedelta(days=2), until=now - timedelta(hours=1))
    assert n == 1
    assert [r.webhook_id for r in receiver.received] == [mid.public_id]


def test_after_a_rotation_both_secrets_sign_until_the_overlap_ends(
        org, receiver, django_capture_on_commit_callbacks):
    ep = _endpoint(org, receiver)
    old_secret = ep.secret
    ep = services.endpoint_rotate_secret(endpoint=ep, overlap=timedelta(hours=1))
    receiver.secrets = [old_secret, ep.secret]
    _emit(org, django_capture_on_commit_callbacks)
    [got] = receiver.received
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert got.verified_with == [0, 1]  # a receiver holding either secret accepts it

    type(ep).objects.filter(pk=ep.pk).update(previous_secret_expires_at=timezone.now() - timedelta(seconds=1))
    _emit(org, django_capture_on_commit_callbacks, topup_id=6)
    assert receiver.received[1].verified_with == [1]  # the old secret no longer signs
    assert len(receiver.received[1].headers["webhook-signature"].split(" ")) == 1


def test_order_is_not_guaranteed_but_the_sequence_restores_it(
        org, receiver, fast_retries, django_capture_on_commit_callbacks):
    """docs/webhooks.md: a retried message arrives after later ones; `sequence` (the
    order of emission) and `timestamp` let the receiver put them back in order."""
    _endpoint(org, receiver)
    receiver.script = [(500, 0)]
    first = _emit(org, django_capture_on_commit_callbacks, topup_id=1)[0]
    second = _emit(org, django_capture_on_commit_callbacks, topup_id=2)[0]
    deliver_due_task()
    accepted = [r.payload for r in receiver.received if r.status == 200]
    assert [p["data"]["topup_id"] for p in accepted] == [2, 1]
    assert [p["id"] for p in sorted(accepted, key=lambda p: p["sequence"])] == [first.public_id, second.public_id]


def test_the_test_event_goes_to_that_endpoint_only(org, receiver, django_capture_on_commit_callbacks):
    ep = _endpoint(org, receiver)
    other = Receiver(secrets=[]).start()
    try:
        _endpoint(org, other)
        with django_capture_on_commit_callbacks(execute=True):
            services.endpoint_send_test(endpoint=ep)
        assert [r.payload["type"] for r in receiver.received] == ["webhook.test"]
        assert other.received == []
    finally:
        other.stop()


def test_events_of_one_organisation_reach_its_endpoints_and_the_platforms_not_anothers(
        org, other_org, receiver, django_capture_on_commit_callbacks):
    mine = _endpoint(org, receiver)
    platform = services.endpoint_create(organization=None, url=receiver.url, event_types=["topup.succeeded"])
    theirs = services.endpoint_create(organization=other_org, url=receiver.url, event_types=["topup.succeeded"])
    receiver.secrets = [mine.secret, platform.secret, theirs.secret]
    _emit(org, django_capture_on_commit_callbacks)
    assert sorted(d.endpoint_id for d in WebhookDelivery.objects.all()) == sorted([mine.pk, platform.pk])
    assert sorted(r.verified_with[0] for r in receiver.received) == [0, 1]


def test_an_endpoint_not_subscribed_to_the_type_gets_nothing_and_nothing_is_stored(
        org, receiver, django_capture_on_commit_callbacks):
    _endpoint(org, receiver, types=["invoice.paid"])
    assert _emit(org, django_capture_on_commit_callbacks) == []
    assert not WebhookMessage.objects.exists() and receiver.received == []


def test_data_that_is_not_the_catalogues_payload_is_refused(org):
    with pytest.raises(ValueError, match="catalogue"):
        services.emit(type="topup.succeeded", organization=org, data={"amount": "1"})
    with pytest.raises(ValueError, match="not in the event catalogue"):
        services.emit(type="topup.failed", organization=org, data={})


def test_a_duplicate_dedup_key_is_emitted_once(org, receiver, django_capture_on_commit_callbacks):
    _endpoint(org, receiver)
    with django_capture_on_commit_callbacks(execute=True):
        assert len(services.emit(type="topup.succeeded", organization=org, data=TOPUP, dedup_key="t:5")) == 1
        assert services.emit(type="topup.succeeded", organization=org, data=TOPUP, dedup_key="t:5") == []
    assert len(receiver.received) == 1


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_delivers_nothing_and_a_committed_one_delivers(org, receiver):
    _endpoint(org, receiver)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.emit(type="topup.succeeded", organization=org, data=TOPUP)
        raise RuntimeError("the change fails after the event was emitted")
    assert receiver.received == []
    assert not WebhookMessage.objects.exists() and not OutboxMessage.objects.filter(task="webhooks.dispatch").exists()

    with transaction.atomic():
        services.emit(type="topup.succeeded", organization=org, data=TOPUP)
        assert receiver.received == []  # not before the commit
    assert [r.verified for r in receiver.received] == [True]


@pytest.mark.django_db(transaction=True)
def test_a_delivery_is_claimed_once_so_two_senders_never_both_send(org, receiver):
    ep = _endpoint(org, receiver)
    ep.status = EndpointStatus.DISABLED
    ep.save()
    with transaction.atomic():
        services.emit(type="topup.succeeded", organization=org, data={**TOPUP, "topup_id": 1})
    assert WebhookDelivery.objects.count() == 0  # disabled: nothing recorded for it
    services.endpoint_update(endpoint=ep, enabled=True)
    with transaction.atomic():
        services.emit(type="topup.succeeded", organization=org, data=TOPUP)
    d = WebhookDelivery.objects.get()
    assert delivery.deliver(d.pk) is None  # delivered already at commit: nothing due
    WebhookDelivery.objects.filter(pk=d.pk).update(status=DeliveryStatus.PENDING, next_attempt_at=timezone.now(),
                                                   claimed_until=timezone.now() + timedelta(seconds=60))
    assert delivery.deliver(d.pk) is None  # another sender holds it
    assert len(receiver.received) == 1


def test_every_attempt_is_counted_by_outcome_in_the_metrics(
        org, receiver, fast_retries, client, django_capture_on_commit_callbacks):
    """cloudbill_webhook_deliveries_total moves once per attempt, after it is recorded:
    two failures (500, 503) retried, then delivered."""
    from core.tests.test_metrics import moved, scrape

    before = scrape(client)
    _endpoint(org, receiver)
    receiver.script = [(500, 0), (503, 0)]
    _emit(org, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        deliver_due_task()
        deliver_due_task()
    after = scrape(client)
    assert moved(before, after, "cloudbill_webhook_deliveries_total", outcome="failed") == 2
    assert moved(before, after, "cloudbill_webhook_deliveries_total", outcome="delivered") == 1
    assert moved(before, after, "cloudbill_webhook_deliveries_total", outcome="gave_up") == 0


def test_a_sender_that_died_mid_request_is_replaced_once_its_claim_runs_out(org, receiver, django_capture_on_commit_callbacks):
    """At least once: a worker killed after claiming (no attempt recorded) leaves the claim to
    run out (LEASE); until then nobody sends, after it deliver_due sends it, same webhook-id."""
    import time_machine

    _endpoint(org, receiver)
    receiver.script = [(500, 0)]  # the first POST fails: the delivery is pending again
    _emit(org, django_capture_on_commit_callbacks)
    d = WebhookDelivery.objects.get()
    first_id = receiver.received[0].webhook_id
    died_at = d.next_attempt_at
    # A worker claims the retry and dies before the request: the claim stays, nothing recorded.
    with time_machine.travel(died_at, tick=False):
        assert delivery._claim(d.pk, died_at)
        assert delivery.deliver_due() == [] and delivery.deliver(d.pk) is None
    with time_machine.travel(died_at + delivery.LEASE - timedelta(seconds=1), tick=False):
        assert delivery.deliver_due() == []  # still held
    with time_machine.travel(died_at + delivery.LEASE + timedelta(seconds=1), tick=False):
        assert delivery.deliver_due() == [d.pk]
        assert delivery.deliver(d.pk) == DeliveryStatus.SUCCEEDED
    assert [r.webhook_id for r in receiver.received] == [first_id, first_id]
    assert [r.verified for r in receiver.received] == [True, True]
    assert WebhookDelivery.objects.get().attempts == 1  # the lost claim is no attempt
