"""Local stand-ins for Stripe and PayPal, started by the tests.

Each speaks the subset of its provider's HTTP API that cloudbill calls, with request
and response bodies shaped as the providers document them, so the official SDKs
(`stripe`, `paypal-server-sdk`) talk to them unchanged. Both honour their provider's
idempotency header (Stripe `Idempotency-Key`, PayPal `PayPal-Request-Id`): a repeated
key returns the stored response and does nothing again. A test can make the server
finish a request and then stall its reply (`stall_next`), so the client times out
after the provider already acted: the case a retry with the same key must survive.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import zlib
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from payments.tests.provider_contract import (
    paypal_event_problems,
    paypal_operation,
    paypal_request_issues,
    paypal_response_problems,
    stripe_error_problems,
    stripe_params_class,
    stripe_request_problems,
    stripe_shape_problems,
    stripe_template,
)

_ids = itertools.count(1)


def _id(prefix: str) -> str:
    """`cus_000132T0250369494`-like: a counter (so `created, id` order is creation order), then
    a letter, then ten hex characters. The letter keeps every run of digits under 13, so no
    id can pass for a card number in a log (Stripe's own ids mix letters and digits too)."""
    return f"{prefix}_{next(_ids):06d}T{hashlib.sha1(str(time.time_ns()).encode()).hexdigest()[:10]}"


class CheckoutClosed(Exception):
    """The customer tried to pay a hosted checkout that is over (expired or complete)."""


class FakeError(Exception):
    def __init__(self, status: int, body: dict):
        super().__init__(status)
        self.status = status
        self.body = body


def parse_stripe_form(body: str) -> dict:
    """Stripe's form encoding (`a[b][0][c]=v`) to nested dicts and lists."""
    root: dict = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt_is_index = not last and parts[i + 1].isdigit()
            if isinstance(node, list):
                idx = int(part)
                while len(node) <= idx:
                    node.append(None)
                if last:
                    node[idx] = value
                else:
                    if node[idx] is None:
                        node[idx] = [] if nxt_is_index else {}
                    node = node[idx]
            else:
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, [] if nxt_is_index else {})
    return root


@dataclass
class _Stored:
    fingerprint: str
    status: int
    body: bytes
    at: float = 0.0  # the provider's clock when the key was first used


class FakeProvider:
    """A threaded HTTP server; subclasses route requests to `handle(method, path, query, headers, body)`."""

    idempotency_header = ""

    def __init__(self):
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str]] = []
        self._idempotent: dict[str, _Stored] = {}
        self._stalls: list[tuple[str, float]] = []
        # What this fake sent that its provider's published description says it never
        # would (provider_contract): the fixtures fail a test that leaves any here.
        self.violations: list[str] = []
        # Each request checked against the description: (method, path, what checked it).
        self.checked: list[tuple[str, str, str]] = []
        self._offset = 0.0  # how far `advance` moved this provider's clock
        self._holds: list[tuple[str, float]] = []
        self._failures: list[tuple[str, int, dict | None]] = []
        # Keys of requests being processed now: a second request with one of them is
        # answered `idempotency_in_progress()`, as both providers do.
        self.in_flight: set[str] = set()
        # (method, path, idempotency key or None) of every request, in order.
        self.keys: list[tuple[str, str, str | None]] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body, extra_headers, stall = provider._dispatch(self.command, self.path, self.headers, raw)
                if stall:
                    time.sleep(stall)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in extra_headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeProvider:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def stall_next(self, path_prefix: str, seconds: float) -> None:
        """Process the next request to `path_prefix` fully, then wait `seconds` before replying."""
        with self.lock:
            self._stalls.append((path_prefix, seconds))

    def clock(self) -> float:
        """The provider's time: the real one, moved on by `advance`."""
        return time.time() + self._offset

    def advance(self, *, days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0) -> None:
        """Let time pass at the provider: idempotency keys older than its lifetime are forgotten."""
        with self.lock:
            self._offset += ((days * 24 + hours) * 60 + minutes) * 60 + seconds

    def key_lifetime(self, path: str) -> float | None:
        """Seconds the provider remembers an idempotency key used on `path` (None: for ever)."""
        return None

    def hold_next(self, path_prefix: str, seconds: float) -> None:
        """Keep the next request to `path_prefix` in progress for `seconds` before processing
        it: a request with the same key meanwhile is told another one is in progress."""
        with self.lock:
            self._holds.append((path_prefix, seconds))

    def fail_next(self, path_prefix: str, status: int, body: dict | None = None, *, times: int = 1) -> None:
        """Answer the next `times` requests to `path_prefix` with `status` and `body` (the
        provider's own error body for that status when None), before doing anything."""
        with self.lock:
            self._failures.extend([(path_prefix, status, body)] * times)

    def count(self, method: str, path_prefix: str) -> int:
        return sum(1 for m, p in self.requests if m == method and p.startswith(path_prefix))

    def keys_sent(self, method: str, path_prefix: str) -> list[str | None]:
        return [k for m, p, k in self.keys if m == method and p.startswith(path_prefix)]

    @staticmethod
    def _take(queue: list, path: str):
        for i, item in enumerate(queue):
            if path.startswith(item[0]):
                del queue[i]
                return item
        return None

    def _dispatch(self, method: str, target: str, headers, raw: bytes):
        parts = urlsplit(target)
        path, query = parts.path, parts.query
        with self.lock:
            self.requests.append((method, path))
            stalled = self._take(self._stalls, path)
            stall = stalled[1] if stalled else 0.0
            key = headers.get(self.idempotency_header) if method == "POST" and self.idempotency_header else None
            self.keys.append((method, path, key))
            failure = self._take(self._failures, path)
            if failure is not None:
                # Refused before the endpoint ran (rate limit, overload): nothing stored, a
                # retry with the key is processed. A 500 the endpoint gave is stored below.
                status, body = failure[1], failure[2] if failure[2] is not None else self.error_body(failure[1])
                self.check_response(method, path, status, body)
                return status, json.dumps(body).encode(), {}, stall
            fingerprint = hashlib.sha256(method.encode() + path.encode() + raw).hexdigest()
            lifetime = self.key_lifetime(path) if key else None
            if key and key in self._idempotent and lifetime is not None and (
                    self.clock() - self._idempotent[key].at >= lifetime):
                del self._idempotent[key]  # the provider has pruned it: the key is new again
            if key and key in self.in_flight:
                status, body = self.idempotency_in_progress(key)
                self.check_response(method, path, status, body)
                return status, json.dumps(body).encode(), {}, stall
            if key and key in self._idempotent:
                stored = self._idempotent[key]
                if stored.fingerprint != fingerprint:
                    status, body = self.idempotency_mismatch()
                    return status, json.dumps(body).encode(), {}, stall
                return stored.status, stored.body, {"Idempotent-Replayed": "true"}, stall
            held = self._take(self._holds, path)
            if key:
                self.in_flight.add(key)
        try:
            if held:
                time.sleep(held[1])  # in progress: the key is taken, the lock is not
            with self.lock:
                try:
                    # A request the description refuses never reaches the endpoint, so
                    # nothing is stored under its key (Stripe: "results are only saved if
                    # an API endpoint started executing").
                    self.check_request(method, path, query, headers, raw)
                except FakeError as exc:
                    self.check_response(method, path, exc.status, exc.body)
                    return exc.status, json.dumps(exc.body).encode(), {}, stall
                try:
                    status, body = self.handle(method, path, query, headers, raw)
                except FakeError as exc:
                    status, body = exc.status, exc.body
                self.check_response(method, path, status, body)
                encoded = json.dumps(body).encode()
                if key and (status < 500 or self.stores_server_errors):
                    self._idempotent[key] = _Stored(fingerprint, status, encoded, self.clock())
                return status, encoded, {}, stall
        finally:
            if key:
                with self.lock:
                    self.in_flight.discard(key)

    # Stripe saves the answer of a request whose endpoint began, 500s included; PayPal
    # lets 5xx be retried with the same PayPal-Request-Id.
    stores_server_errors = False

    def idempotency_in_progress(self, key: str) -> tuple[int, dict]:  # pragma: no cover - abstract
        raise NotImplementedError

    def error_body(self, status: int) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def handle(self, method, path, query, headers, raw):  # pragma: no cover - abstract
        raise NotImplementedError

    def check_request(self, method, path, query, headers, raw) -> None:
        """Refuse, as the provider would, a request its description does not accept."""

    def check_response(self, method, path, status, body) -> None:
        """Record in `violations` an answer the provider would never give."""

    def idempotency_mismatch(self):  # pragma: no cover - abstract
        raise NotImplementedError


# --------------------------------------------------------------------------- Stripe

# Stripe's currency rules as https://docs.stripe.com/currencies states them, written out
# here apart from the gateway's table: a fake that imported it would agree with its mistakes.
STRIPE_PRESENTMENT = set("""
usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd bwp byn bzd cad cdf chf
clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf gtq gyd hkd hnl htg huf idr ils
inr isk jmd jod jpy kes kgs khr kmf krw kwd kyd kzt lak lbp lkr lrd lsl mad mdl mga mkd mmk mnt mop mur mvr mwk
mxn myr mzn nad ngn nio nok npr nzd omr pab pen pgk php pkr pln pyg qar ron rsd rub rwf sar sbd scr sek sgd shp
sle sos srd std szl thb tjs tnd top try ttd twd tzs uah ugx uyu uzs vnd vuv wst xaf xcd xcg xof xpf yer zar zmw
""".split())
STRIPE_ZERO_DECIMAL_FAKE = set("bif clp djf gnf jpy kmf krw mga pyg rwf vnd vuv xaf xof xpf".split())
STRIPE_THREE_DECIMAL_FAKE = set("bhd jod kwd omr tnd".split())
STRIPE_MINIMUM_MINOR = {  # in Stripe's minor units
    "usd": 50, "aed": 200, "aud": 50, "bgn": 100, "brl": 50, "cad": 50, "chf": 50, "czk": 1500, "dkk": 250,
    "eur": 50, "gbp": 30, "hkd": 400, "huf": 17500, "inr": 50, "jpy": 50, "mxn": 1000, "myr": 200, "nok": 300,
    "nzd": 50, "pln": 200, "ron": 200, "sek": 300, "sgd": 50, "thb": 1000,
}


def stripe_fake_exponent(currency: str) -> int:
    return 0 if currency in STRIPE_ZERO_DECIMAL_FAKE else 3 if currency in STRIPE_THREE_DECIMAL_FAKE else 2


def stripe_amount_refusal(amount: int, currency: str, *, charge: bool = True) -> dict | None:
    """The error Stripe answers for an amount in minor units it does not take, or None."""
    if currency not in STRIPE_PRESENTMENT:
        return {"message": f"Invalid currency: {currency}. Stripe currently supports these currencies: "
                           + ", ".join(sorted(STRIPE_PRESENTMENT)), "param": "currency"}
    if currency in ("isk", "ugx") and amount % 100:
        return {"message": f"Invalid amount. Currency {currency.upper()} has become effectively zero-decimal and "
                           "charged amounts must be evenly divisible by 100. See "
                           "https://stripe.com/docs/currencies#special-cases for more information.",
                "code": "invalid_charge_amount_no_decimal_compatible", "param": "amount"}
    if currency in STRIPE_THREE_DECIMAL_FAKE and amount % 10:
        return {"message": f"Invalid amount. Amounts in {currency.upper()} must have 0 as their last digit "
                           "(round to the nearest ten). See https://stripe.com/docs/currencies#three-decimal.",
                "param": "amount"}
    top = 999_999_999_999 if currency == "idr" else 99_999_999
    if amount > top:
        return {"message": f"Amount must be no more than {top} {currency} (in the currency's smallest unit).",
                "code": "amount_too_large", "param": "amount"}
    minimum = STRIPE_MINIMUM_MINOR.get(currency, 1)
    if charge and amount < minimum:
        return {"message": f"Amount must be at least {minimum} {currency} (in the currency's smallest unit).",
                "code": "amount_too_small", "param": "amount"}
    return None


class _StripeObjects(dict):
    def __setitem__(self, key: str, obj: dict) -> None:
        for name, value in stripe_template(obj["object"]).items():
            obj.setdefault(name, value)
        super().__setitem__(key, obj)


@dataclass
class FakeStripe(FakeProvider):
    """`https://api.stripe.com/v1/...` for customers, Checkout Sessions, PaymentIntents,
    SetupIntents, PaymentMethods, Refunds and Events."""

    api_key: str = "sk_test_fake"
    # Every object is stored with all the fields Stripe returns for its type
    # (provider_contract.stripe_template); the builders below set what they model.
    objects: dict[str, dict] = field(default_factory=lambda: _StripeObjects())
    events: list[dict] = field(default_factory=list)
    declining_methods: set[str] = field(default_factory=set)
    # The creating parameters of each Checkout Session (e.g. payment_intent_data), which
    # Stripe applies later but never returns as fields of the session.
    session_params: dict[str, dict] = field(default_factory=dict)
    # What a new refund starts as: "succeeded" (cards, mostly), "pending" or
    # "requires_action"; `settle_refund` moves it on later, as Stripe does.
    refund_outcome: str = "succeeded"
    # Cards like Stripe's 4000002500003155 test card: an off-session charge needs the
    # customer's authentication (3-D Secure).
    authenticating_methods: set[str] = field(default_factory=set)
    # Adaptive Pricing is a dashboard setting, on unless a session's request turns it off:
    # the customer then pays in their own currency at Stripe's rate (source x fx_rate).
    adaptive_pricing_default: bool = True
    customer_currency: str = "eur"
    fx_rate: Decimal = Decimal("0.935")
    # Before 2025-03-31 a localised session's intent (and charge) was in the customer's
    # currency, without `presentment_details`; a test can ask for that shape.
    localised_intents_in_presentment_currency: bool = False
    # Hosted sessions always have a url; a test can make Stripe answer without one.
    omit_session_url: bool = False

    idempotency_header = "Idempotency-Key"
    stores_server_errors = True

    def key_lifetime(self, path: str) -> float | None:
        # "Keys are eligible to be removed from the system automatically after they're
        # at least 24 hours old" (Stripe's idempotent requests).
        return 24 * 3600.0

    def __post_init__(self):
        FakeProvider.__init__(self)

    # --- helpers for tests -----------------------------------------------------------

    def now(self) -> int:
        return int(time.time())

    def _event(self, type_: str, obj: dict) -> dict:
        event = {
            "id": _id("evt"), "object": "event", "api_version": "2026-10-28.endive", "created": self.now(),
            "data": {"object": json.loads(json.dumps(obj))}, "livemode": False, "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None}, "type": type_,
        }
        self.violations += [f"event {type_}: {p}" for p in stripe_shape_problems(event)]
        self.events.append(event)
        return event

    def make_card(self, *, customer: str | None = None, brand: str = "visa", last4: str = "4242",
                  declines: bool = False, requires_authentication: bool = False) -> dict:
        pm = {
            "id": _id("pm"), "object": "payment_method", "type": "card", "customer": customer,
            "billing_details": {"email": None, "name": None},
            "card": {"brand": brand, "last4": last4, "exp_month": 12, "exp_year": 2030, "funding": "credit",
                     "country": "US", "fingerprint": hashlib.md5(last4.encode()).hexdigest()[:16]},  # noqa: S324
            "created": self.now(), "livemode": False, "metadata": {},
        }
        self.objects[pm["id"]] = pm
        if declines:
            self.declining_methods.add(pm["id"])
        if requires_authentication:
            self.authenticating_methods.add(pm["id"])
        return pm

    def authenticate(self, pi_id: str, *, succeeds: bool = True) -> list[dict]:
        """The customer finishes (or fails) Stripe's hosted authentication page of a
        PaymentIntent confirmed on-session. Returns the events Stripe would send."""
        with self.lock:
            pi = self.objects[pi_id]
            if pi["status"] != "requires_action" or (pi.get("next_action") or {}).get("type") != "redirect_to_url":
                raise AssertionError(f"{pi_id} is not waiting on Stripe's authentication page")
            sent_from = len(self.events)
            pi["next_action"] = None
            if succeeds:
                self._charge(pi, pi["payment_method"])
            else:
                pi["status"] = "requires_payment_method"
                pi["last_payment_error"] = {
                    "type": "invalid_request_error", "code": "payment_intent_authentication_failure",
                    "message": "The provided PaymentMethod has failed authentication.",
                    "payment_method": {"id": pi["payment_method"]}}
                self._event("payment_intent.payment_failed", pi)
            return self.events[sent_from:]

    def complete_checkout(self, session_id: str, *, declines: bool = False, async_payment: bool = False) -> list[dict]:
        """The customer finishes the hosted page. Returns the events Stripe would send, in order.
        A session that is no longer open (expired, or complete) cannot be paid: Stripe shows
        the customer that it is over, and `CheckoutClosed` says so here."""
        with self.lock:
            session = self.objects[session_id]
            if session["status"] != "open":
                raise CheckoutClosed(f"checkout session {session_id} is {session['status']}: it cannot be paid")
            sent_from = len(self.events)
            if session["mode"] == "setup":
                pm = self.make_card(customer=session["customer"])
                si = {
                    "id": _id("seti"), "object": "setup_intent", "customer": session["customer"],
                    "payment_method": pm["id"], "status": "succeeded", "usage": "off_session",
                    "metadata": dict(session.get("metadata") or {}), "created": self.now(), "livemode": False,
                }
                self.objects[si["id"]] = si
                session.update(status="complete", setup_intent=si["id"])
                self._event("setup_intent.succeeded", si)
                self._event("checkout.session.completed", session)
                return self.events[sent_from:]
            pm = self.make_card(customer=session.get("customer"), declines=declines)
            pi = self._new_payment_intent(
                amount=session["amount_total"], currency=session["currency"], customer=session.get("customer"),
                metadata=dict((self.session_params[session_id].get("payment_intent_data") or {}).get("metadata")
                              or session["metadata"]),
            )
            self._localise(session, pi)
            session["payment_intent"] = pi["id"]
            if async_payment:
                # A delayed method (SEPA debit, bank transfer): the page is done, the money
                # is not; Stripe says which later (settle_async).
                pi.update(payment_method=pm["id"], status="processing")
                session.update(status="complete", payment_status="unpaid")
                self._event("checkout.session.completed", session)
                return self.events[sent_from:]
            self._confirm(pi, pm["id"])
            if pi["status"] == "succeeded":
                session.update(status="complete", payment_status="paid")
                self._event("checkout.session.completed", session)
            return self.events[sent_from:]

    def settle_async(self, session_id: str, *, succeeded: bool) -> list[dict]:
        """The delayed payment of a completed, unpaid session clears or fails."""
        with self.lock:
            session = self.objects[session_id]
            pi = self.objects[session["payment_intent"]]
            sent_from = len(self.events)
            if not succeeded:
                self.declining_methods.add(pi["payment_method"])
            self._confirm(pi, pi["payment_method"])
            if succeeded:
                session["payment_status"] = "paid"
                self._event("checkout.session.async_payment_succeeded", session)
            else:
                self._event("checkout.session.async_payment_failed", session)
            return self.events[sent_from:]

    def expire_checkout(self, session_id: str) -> dict:
        with self.lock:
            session = self.objects[session_id]
            session.update(status="expired", url=None)
            return self._event("checkout.session.expired", session)

    def _localise(self, session: dict, pi: dict) -> None:
        """Adaptive Pricing: the customer sees and pays their own currency. The session
        then reads in the customer's currency, ours under `currency_conversion` (as
        Stripe returns sessions localised before 2025-03-31, and the fixtures show); the
        intent keeps our amount and says what the customer paid in `presentment_details`."""
        source = session["currency"]
        target = self.customer_currency
        if not (session["adaptive_pricing"]["enabled"] and target != source):
            return
        value = Decimal(session["amount_total"]).scaleb(-stripe_fake_exponent(source)) * self.fx_rate
        presented = int(value.scaleb(stripe_fake_exponent(target)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        session["currency_conversion"] = {
            "amount_subtotal": session["amount_subtotal"], "amount_total": session["amount_total"],
            "fx_rate": str(self.fx_rate), "source_currency": source,
        }
        session.update(currency=target, amount_total=presented, amount_subtotal=presented)
        if self.localised_intents_in_presentment_currency:
            pi.update(amount=presented, currency=target)
        else:
            pi["presentment_details"] = {"presentment_amount": presented, "presentment_currency": target}

    def dispute(self, charge_id: str, *, amount: int | None = None) -> dict:
        """The cardholder's bank disputes the charge; by default its whole amount, even
        after a partial refund (the bank's claim, not Stripe's arithmetic)."""
        charge = self.objects[charge_id]
        dispute = {
            "id": _id("dp"), "object": "dispute", "amount": charge["amount"] if amount is None else amount,
            "currency": charge["currency"],
            "charge": charge_id, "payment_intent": charge["payment_intent"], "reason": "fraudulent",
            "status": "needs_response", "created": self.now(), "livemode": False,
        }
        self.objects[dispute["id"]] = dispute
        return self._event("charge.dispute.created", dispute)

    def close_dispute(self, dispute_id: str, *, won: bool | None = None, status: str | None = None) -> dict:
        """The dispute ends: won or lost at the bank, an inquiry closed without a
        chargeback (`warning_closed`), or one Stripe prevented (`prevented`)."""
        dispute = self.objects[dispute_id]
        dispute["status"] = status or ("won" if won else "lost")
        return self._event("charge.dispute.closed", dispute)

    def update_dispute(self, dispute_id: str, status: str, *, event: str = "charge.dispute.updated") -> dict:
        """Evidence asked or under review (`charge.dispute.updated`), funds held or given
        back while it runs (`charge.dispute.funds_withdrawn` / `funds_reinstated`)."""
        dispute = self.objects[dispute_id]
        dispute["status"] = status
        return self._event(event, dispute)

    # --- the API -------------------------------------------------------------------

    def check_request(self, method, path, query, headers, raw) -> None:
        if not path.startswith("/v1/"):
            return
        params = parse_stripe_form(raw.decode() if method == "POST" else query)
        problems = stripe_request_problems(method, path, params)
        if problems is None:
            self.violations.append(f"{method} {path}: a Stripe call no parameter type is checked for "
                                   f"(add it to provider_contract.STRIPE_OPERATIONS)")
            return
        self.checked.append((method, path, f"stripe.params.{stripe_params_class(method, path).__name__}"))
        if problems:
            message, param = problems[0]
            code = ("parameter_unknown" if message.startswith("Received unknown") else
                    "parameter_missing" if message.startswith("Missing required") else "parameter_invalid")
            raise self._err(400, message, code=code, param=param)

    def check_response(self, method, path, status, body) -> None:
        problems = stripe_shape_problems(body) if status < 300 else stripe_error_problems(body)
        self.violations += [f"{method} {path} {status}: {p}" for p in problems]

    def idempotency_mismatch(self):
        return 400, {"error": {"type": "idempotency_error", "message": "Keys for idempotent requests can only be used with the same parameters they were first used with."}}

    def idempotency_in_progress(self, key: str):
        # Stripe's answer while the first request with the key still runs; nothing is saved.
        return 409, {"error": {
            "type": "idempotency_error", "code": "idempotency_key_in_use",
            "message": "There is currently another in-progress request using this Idempotent Key (that probably "
                       f"means you submitted twice, and the other request is still going through): {key}. "
                       "Please try again later."}}

    def error_body(self, status: int) -> dict:
        if status == 429:
            return {"error": {"type": "invalid_request_error", "code": "rate_limit",
                              "message": "Request rate limit exceeded. Learn more about rate limits here "
                                         "https://stripe.com/docs/rate-limits."}}
        if status == 409:
            return {"error": {"type": "invalid_request_error", "code": "lock_timeout",
                              "message": "This object cannot be accessed right now because another API request or "
                                         "Stripe process is currently accessing it. Please try again later."}}
        if status >= 500:
            return {"error": {"type": "api_error", "message": "Something went wrong on Stripe's end."}}
        return {"error": {"type": "invalid_request_error", "message": "Invalid request."}}

    def _err(self, status: int, message: str, type_: str = "invalid_request_error", **extra) -> FakeError:
        return FakeError(status, {"error": {"type": type_, "message": message, **extra}})

    def _get(self, obj_id: str, prefix: str) -> dict:
        obj = self.objects.get(obj_id)
        if obj is None or not obj_id.startswith(prefix):
            raise self._err(404, f"No such object: '{obj_id}'", code="resource_missing")
        return obj

    def _list(self, items: list[dict], url: str, params: dict) -> dict:
        items = sorted(items, key=lambda o: (o.get("created", 0), o["id"]), reverse=True)
        created = params.get("created") or {}
        if "gte" in created:
            items = [o for o in items if o.get("created", 0) >= int(created["gte"])]
        if params.get("starting_after"):
            ids = [o["id"] for o in items]
            if params["starting_after"] in ids:
                items = items[ids.index(params["starting_after"]) + 1:]
        limit = int(params.get("limit") or 10)
        return {"object": "list", "url": url, "has_more": len(items) > limit, "data": items[:limit]}

    def handle(self, method, path, query, headers, raw):
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            raise self._err(401, "Invalid API Key provided.")
        params = parse_stripe_form(raw.decode() if method == "POST" else query)
        p = path.rstrip("/").split("/")[2:]  # after /v1
        expand = params.pop("expand", []) or []
        obj_id = p[1] if len(p) > 1 else ""
        if p == ["customers"] and method == "POST":
            cus = {"id": _id("cus"), "object": "customer", "email": params.get("email"), "name": params.get("name"),
                   "metadata": params.get("metadata") or {}, "created": self.now(), "livemode": False}
            self.objects[cus["id"]] = cus
            return 200, cus
        if p[0] == "customers":
            return 200, self._get(obj_id, "cus_")
        if p[:2] == ["checkout", "sessions"]:
            if method == "POST" and len(p) == 2:
                return 200, self._create_session(params)
            if method == "POST" and len(p) == 4 and p[3] == "expire":
                return 200, self._expire_session(self._get(p[2], "cs_"))
            return 200, self._get(p[2], "cs_")
        if p[0] == "payment_intents":
            if method == "POST" and len(p) == 1:
                return self._create_payment_intent(params)
            if method == "POST" and len(p) == 3 and p[2] == "confirm":
                return self._confirm_payment_intent(self._get(obj_id, "pi_"), params)
            if method == "GET" and len(p) == 1:
                return 200, self._list([o for o in self.objects.values() if o["object"] == "payment_intent"],
                                       "/v1/payment_intents", params)
            return 200, self._get(obj_id, "pi_")
        if p[0] == "setup_intents":
            si = dict(self._get(obj_id, "seti_"))
            if "payment_method" in expand and si.get("payment_method"):
                si["payment_method"] = self.objects[si["payment_method"]]
            return 200, si
        if p[0] == "payment_methods":
            pm = self._get(obj_id, "pm_")
            if method == "POST" and p[-1] == "detach":
                pm["customer"] = None
                self._event("payment_method.detached", pm)
            return 200, pm
        if p[0] == "refunds":
            if method == "POST" and len(p) == 1:
                return 200, self._create_refund(params)
            if method == "GET" and len(p) == 2:
                return 200, self._get(obj_id, "re_")
            refunds = [o for o in self.objects.values() if o["object"] == "refund"]
            if params.get("charge"):
                refunds = [r for r in refunds if r["charge"] == params["charge"]]
            if params.get("payment_intent"):
                refunds = [r for r in refunds if r["payment_intent"] == params["payment_intent"]]
            return 200, self._list(refunds, "/v1/refunds", params)
        if p[0] == "charges":
            return 200, self._get(obj_id, "ch_")
        if p[0] == "events":
            if len(p) == 2:
                for event in self.events:
                    if event["id"] == obj_id:
                        return 200, event
                raise self._err(404, f"No such event: '{obj_id}'", code="resource_missing")
            events = self.events
            types = params.get("types") or ([params["type"]] if params.get("type") else None)
            if types:
                events = [e for e in events if e["type"] in types]
            return 200, self._list(events, "/v1/events", params)
        raise self._err(404, f"Unrecognized request URL ({method}: {path}).")

    def _create_session(self, params: dict) -> dict:
        mode = params.get("mode")
        if mode not in ("payment", "setup"):
            raise self._err(400, "Missing required param: mode.", param="mode")
        if mode == "setup" and not params.get("currency") and not params.get("payment_method_types"):
            # Dynamic payment methods in setup mode need the currency to choose them by.
            raise self._err(400, "Missing required param: currency. A setup mode Checkout Session without "
                            "`payment_method_types` needs `currency`.", param="currency")
        adaptive = (params.get("adaptive_pricing") or {}).get("enabled")
        session = {
            "id": _id("cs_test"), "object": "checkout.session", "mode": mode, "status": "open",
            "payment_status": "unpaid" if mode == "payment" else "no_payment_required",
            "customer": params.get("customer"), "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata") or {}, "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"), "payment_intent": None, "setup_intent": None,
            "created": self.now(), "expires_at": self.now() + 86400, "livemode": False,
            "currency": params.get("currency"), "amount_total": None, "amount_subtotal": None,
            "adaptive_pricing": {"enabled": self.adaptive_pricing_default if adaptive is None else adaptive == "true"},
            "currency_conversion": None, "presentment_details": None,
        }
        if mode == "payment":
            items = params.get("line_items") or []
            if not items:
                raise self._err(400, "Missing required param: line_items.", param="line_items")
            total, currency = 0, None
            for i, item in enumerate(items):
                pd = item["price_data"]
                currency = pd["currency"]
                refusal = stripe_amount_refusal(int(pd["unit_amount"]), currency, charge=False)
                if refusal:
                    raise self._err(400, **{**refusal, "param": f"line_items[{i}][price_data][{refusal['param']}]"})
                total += int(pd["unit_amount"]) * int(item.get("quantity", 1))
            refusal = stripe_amount_refusal(total, currency)
            if refusal:
                raise self._err(400, **refusal)
            session.update(amount_total=total, amount_subtotal=total, currency=currency)
        session["url"] = None if self.omit_session_url else f"https://checkout.stripe.com/c/pay/{session['id']}"
        self.objects[session["id"]] = session
        self.session_params[session["id"]] = params  # what Stripe keeps but does not show
        return session

    def _expire_session(self, session: dict) -> dict:
        """POST /v1/checkout/sessions/{id}/expire: only an open session, as Stripe; its page
        then cannot be paid, and Stripe sends `checkout.session.expired`."""
        if session["status"] != "open":
            raise self._err(400, 'Only Checkout Sessions with a status in ["open"] can be expired. '
                                 f"This Checkout Session has a status of `{session['status']}`.")
        session.update(status="expired", url=None)
        self._event("checkout.session.expired", session)
        return session

    def _new_payment_intent(self, *, amount: int, currency: str, customer, metadata) -> dict:
        pi = {
            "id": _id("pi"), "object": "payment_intent", "amount": amount, "amount_received": 0,
            "currency": currency, "customer": customer, "metadata": metadata, "status": "requires_payment_method",
            "latest_charge": None, "payment_method": None, "last_payment_error": None, "next_action": None,
            "presentment_details": None, "created": self.now(), "livemode": False,
        }
        self.objects[pi["id"]] = pi
        return pi

    def _confirm(self, pi: dict, pm_id: str, *, off_session: bool = False, return_url: str | None = None) -> None:
        pi["payment_method"] = pm_id
        pi["next_action"] = None
        if pm_id in self.declining_methods:
            pi["status"] = "requires_payment_method"
            pi["last_payment_error"] = {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
                                        "message": "Your card has insufficient funds.", "payment_method": {"id": pm_id}}
            self._event("payment_intent.payment_failed", pi)
            return
        if pm_id in self.authenticating_methods:
            pi["status"] = "requires_action"
            if off_session:
                # The bank wants the cardholder, who is not there: Stripe's 402
                # authentication_required, the PaymentIntent left in requires_action.
                pi["last_payment_error"] = {
                    "type": "card_error", "code": "authentication_required", "decline_code": "authentication_required",
                    "message": "Your card was declined. This transaction requires authentication.",
                    "payment_method": {"id": pm_id}}
                pi["next_action"] = {"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect"}}
            else:
                pi["last_payment_error"] = None
                pi["next_action"] = (
                    {"type": "redirect_to_url", "redirect_to_url": {
                        "url": f"https://hooks.stripe.com/3d_secure_2/hosted?payment_intent={pi['id']}",
                        "return_url": return_url}}
                    if return_url else {"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect"}})
            self._event("payment_intent.requires_action", pi)
            return
        self._charge(pi, pm_id)

    def _confirm_payment_intent(self, pi: dict, params: dict):
        """POST /v1/payment_intents/{id}/confirm."""
        if pi["status"] not in ("requires_payment_method", "requires_confirmation", "requires_action"):
            raise self._err(400, f"This PaymentIntent's status is {pi['status']}; it cannot be confirmed.",
                            code="payment_intent_unexpected_state")
        pm_id = params.get("payment_method") or pi.get("payment_method")
        if pm_id not in self.objects:
            raise self._err(400, f"No such PaymentMethod: '{pm_id}'", param="payment_method")
        off_session = params.get("off_session") == "true"
        self._confirm(pi, pm_id, off_session=off_session, return_url=params.get("return_url"))
        if pi["status"] not in ("succeeded", "requires_action") or (off_session and pi["status"] != "succeeded"):
            error = dict(pi["last_payment_error"])
            error.pop("payment_method", None)
            raise FakeError(402, {"error": {**error, "payment_intent": pi}})
        return 200, pi

    def _charge(self, pi: dict, pm_id: str) -> None:
        charge = {
            "id": _id("ch"), "object": "charge", "amount": pi["amount"], "amount_captured": pi["amount"],
            "amount_refunded": 0, "currency": pi["currency"], "customer": pi["customer"], "paid": True,
            "captured": True, "refunded": False, "status": "succeeded", "payment_intent": pi["id"],
            "payment_method": pm_id, "metadata": pi["metadata"], "disputed": False, "created": self.now(),
            "presentment_details": pi.get("presentment_details"), "livemode": False,
        }
        self.objects[charge["id"]] = charge
        pi.update(status="succeeded", amount_received=pi["amount"], latest_charge=charge["id"], last_payment_error=None)
        self._event("charge.succeeded", charge)
        self._event("payment_intent.succeeded", pi)

    def _create_payment_intent(self, params: dict):
        for name in ("amount", "currency"):
            if not params.get(name):
                raise self._err(400, f"Missing required param: {name}.", param=name)
        refusal = stripe_amount_refusal(int(params["amount"]), params["currency"])
        if refusal:
            raise self._err(400, **refusal)
        pi = self._new_payment_intent(amount=int(params["amount"]), currency=params["currency"],
                                      customer=params.get("customer"), metadata=params.get("metadata") or {})
        if params.get("confirm") == "true":
            # Under the API version the pinned SDK sends, a PaymentIntent without
            # allowed_payment_method_types (this version's name for payment_method_types)
            # has automatic payment methods on, and confirming one needs a return_url
            # unless redirects are refused (Stripe's own answer).
            apm = params.get("automatic_payment_methods") or {}
            if (not params.get("allowed_payment_method_types") and not params.get("return_url")
                    and apm.get("allow_redirects") != "never"):
                raise self._err(
                    400, "This PaymentIntent is configured to accept payment methods enabled in your Dashboard. "
                    "Because some of these payment methods might redirect your customer off of your page, you "
                    "must provide a `return_url`. If you don't want to accept redirect-based payment methods, set "
                    "`automatic_payment_methods[enabled]` to `true` and `automatic_payment_methods[allow_redirects]` "
                    "to `never` when creating Setup Intents and Payment Intents.", param="return_url")
            pm_id = params.get("payment_method")
            if pm_id not in self.objects:
                raise self._err(400, f"No such PaymentMethod: '{pm_id}'", param="payment_method")
            self._confirm(pi, pm_id, off_session=params.get("off_session") == "true")
            if pi["status"] != "succeeded":
                error = dict(pi["last_payment_error"])
                error.pop("payment_method", None)
                raise FakeError(402, {"error": {**error, "payment_intent": pi}})
        return 200, pi

    def _create_refund(self, params: dict) -> dict:
        if params.get("charge"):
            charge = self._get(params["charge"], "ch_")
        else:
            pi = self._get(params.get("payment_intent", ""), "pi_")
            charge = self.objects[pi["latest_charge"]]
        amount = int(params.get("amount") or charge["amount"] - charge["amount_refunded"])
        refusal = stripe_amount_refusal(amount, charge["currency"], charge=False)
        if refusal:
            raise self._err(400, **refusal)
        if amount > charge["amount"] - charge["amount_refunded"]:
            raise self._err(400, f"Refund amount ({amount}) is greater than unrefunded amount on charge.",
                            code="charge_already_refunded")
        status = self.refund_outcome
        refund = {  # shaped like fixtures3.json's refund
            "id": _id("re"), "object": "refund", "amount": amount, "balance_transaction": None,
            "charge": charge["id"], "created": self.now(), "currency": charge["currency"],
            "destination_details": {"card": {"type": "refund"}, "type": "card"},
            "metadata": params.get("metadata") or {}, "payment_intent": charge["payment_intent"],
            "reason": params.get("reason"), "receipt_number": None, "source_transfer_reversal": None,
            "status": status, "transfer_reversal": None, "customer": charge.get("customer"),
            "customer_account": None, "payment_method": charge.get("payment_method"),
        }
        self._refund_state(refund, status)
        self.objects[refund["id"]] = refund
        # A pending refund is counted as refunded on its charge until it fails.
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        self._event("refund.created", refund)
        self._event("charge.refunded", charge)
        return refund

    @staticmethod
    def _refund_state(refund: dict, status: str, failure_reason: str = "") -> None:
        refund["status"] = status
        for name in ("pending_reason", "next_action", "failure_reason", "failure_balance_transaction"):
            refund.pop(name, None)
        if status == "pending":
            refund["pending_reason"] = "processing"
        elif status == "requires_action":
            refund["next_action"] = {"type": "display_details", "display_details": {
                "email_sent": {"email_sent_at": int(time.time()), "email_sent_to": "buyer@example.com"},
                "expires_at": int(time.time()) + 45 * 86400}}
        elif status == "failed":
            refund["failure_reason"] = failure_reason or "declined"
            refund["failure_balance_transaction"] = _id("txn")

    # Stripe's moves: pending and requires_action go on to succeeded or failed; only a
    # refund that requires action can be canceled; a succeeded one can still fail.
    _REFUND_MOVES = {
        "pending": {"requires_action", "succeeded", "failed"},
        "requires_action": {"pending", "succeeded", "failed", "canceled"},
        "succeeded": {"failed"},
    }

    def settle_refund(self, refund_id: str, status: str, *, failure_reason: str = "") -> list[dict]:
        """Stripe moves a refund on (the bank answered, the customer acted, it expired).
        Returns the events Stripe sends: refund.updated, and refund.failed when it failed;
        a failed or canceled refund's amount is no longer refunded on its charge."""
        with self.lock:
            refund = self._get(refund_id, "re_")
            if status not in self._REFUND_MOVES.get(refund["status"], set()):
                raise ValueError(f"A {refund['status']} Stripe refund cannot become {status}.")
            sent_from = len(self.events)
            self._refund_state(refund, status, failure_reason)
            if status in ("failed", "canceled"):
                charge = self.objects[refund["charge"]]
                charge["amount_refunded"] -= refund["amount"]
                charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            self._event("refund.updated", refund)
            if status == "failed":
                self._event("refund.failed", refund)
            return self.events[sent_from:]


# --------------------------------------------------------------------------- PayPal

# Ids as PayPal's descriptions pattern them: 13 of [2-9A-HJ-NP-Z].
MERCHANT_ID = "MERCHANT23456"
PAYER_ID = "PAYERFAKE2345"


# PayPal's currency codes page (developer.paypal.com/api/rest/reference/currency-codes):
# the currencies it takes, and those that "do not support decimals".
PAYPAL_FAKE_CURRENCIES = set("AUD BRL CAD CNY CZK DKK EUR HKD HUF ILS JPY MYR MXN TWD NZD NOK PHP PLN GBP SGD SEK "
                             "CHF THB USD".split())
PAYPAL_FAKE_NO_DECIMALS = {"HUF", "JPY", "TWD"}


def paypal_amount_issue(money: dict, *, refund: bool = False) -> str | None:
    """The 422 issue PayPal answers for an amount it does not take, or None."""
    currency, value = money.get("currency_code", ""), money.get("value", "")
    if currency not in PAYPAL_FAKE_CURRENCIES:
        return "INVALID_CURRENCY_CODE"
    decimals = len(value.partition(".")[2])
    if currency in PAYPAL_FAKE_NO_DECIMALS and "." in value:
        return "DECIMALS_NOT_SUPPORTED" if refund else "DECIMAL_PRECISION"
    if decimals > 2:
        return "DECIMAL_PRECISION"
    if Decimal(value or "0") <= 0:
        return "CANNOT_BE_ZERO_OR_NEGATIVE"
    return None


@dataclass
class FakePayPal(FakeProvider):
    """`https://api-m.paypal.com` for OAuth tokens, Orders v2, capture refunds and
    webhook signature verification.

    Real PayPal signs `transmission_id|transmission_time|webhook_id|crc32(body)` with an
    RSA certificate; this fake signs the same string with an HMAC key of its own and
    checks it in verify-webhook-signature, over the exact bytes of `webhook_event`
    (as PayPal does: a re-serialized body changes the CRC and fails)."""

    client_id: str = "paypal-client"
    client_secret: str = "paypal-secret"
    webhook_id: str = "8PT597110X687430LKGECATA"  # alphanumeric, as PayPal issues them
    signing_key: bytes = b"fake-paypal-cert"
    orders: dict[str, dict] = field(default_factory=dict)
    captures: dict[str, dict] = field(default_factory=dict)
    refunds: dict[str, dict] = field(default_factory=dict)
    # The order's links are optional in PayPal's Orders v2 description: an order may come
    # back without the page the customer approves it on.
    omit_approval_link: bool = False
    disputes: dict[str, dict] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    _reversed: dict[str, Decimal] = field(default_factory=dict)  # capture id: returned through disputes
    _refund_capture: dict[str, str] = field(default_factory=dict)  # refund id: its capture id

    # What a new refund starts as: "COMPLETED", or "PENDING" (e.g. an eCheck capture);
    # `settle_refund` moves it on later.
    refund_outcome: str = "COMPLETED"

    idempotency_header = "PayPal-Request-Id"

    def __post_init__(self):
        FakeProvider.__init__(self)

    def check_request(self, method, path, query, headers, raw) -> None:
        if path == "/v1/oauth2/token":
            return  # not in the four published documents under ../shared/specs/paypal
        issues = paypal_request_issues(method, path, headers, raw)
        if issues is None:
            self.violations.append(f"{method} {path}: no operation of PayPal's descriptions matches")
            return
        self.checked.append((method, path, paypal_operation(method, path).name))
        if issues:
            raise FakeError(400, {
                "name": "INVALID_REQUEST", "debug_id": _id("dbg"),
                "message": "Request is not well-formed, syntactically incorrect, or violates schema.",
                "details": issues[:10],
            })

    def check_response(self, method, path, status, body) -> None:
        if path == "/v1/oauth2/token":
            return
        problems = paypal_response_problems(method, path, status, body)
        self.violations += [f"{method} {path} {status}: {p}" for p in problems or []]
    def key_lifetime(self, path: str) -> float | None:
        # PayPal's descriptions of PayPal-Request-Id: Orders v2 "The server stores keys for
        # 6 hours"; Payments v2 (captures, refunds) "The server stores keys for 45 days".
        return 45 * 86400.0 if path.startswith("/v2/payments/") else 6 * 3600.0

    def idempotency_mismatch(self):
        return 422, {"name": "UNPROCESSABLE_ENTITY", "message": "Request id reused with another body.",
                     "details": [{"issue": "DUPLICATE_REQUEST_ID"}]}

    def idempotency_in_progress(self, key: str):
        # PayPal's error_409 (Payments v2): the first request with this PayPal-Request-Id still runs.
        return 409, {"name": "RESOURCE_CONFLICT", "message": "The server has detected a conflict while processing "
                     "this request.", "debug_id": _id("dbg"), "details": [{
                         "issue": "PREVIOUS_REQUEST_IN_PROGRESS",
                         "description": "A previous request on this resource is currently in progress. Please wait "
                                        "for sometime and try again. It is best to space out the initial and the "
                                        "subsequent request(s) to avoid receiving this error."}]}

    def error_body(self, status: int) -> dict:
        if status == 409:
            return self.idempotency_in_progress("")[1]
        if status == 429:
            return {"name": "RATE_LIMIT_REACHED", "message": "Too many requests. Blocked due to rate limiting.",
                    "debug_id": _id("dbg"), "details": [{"issue": "RATE_LIMIT_REACHED"}]}
        if status == 503:
            return {"name": "SERVICE_UNAVAILABLE", "message": "Service Unavailable.", "debug_id": _id("dbg")}
        if status >= 500:
            return {"name": "INTERNAL_SERVER_ERROR", "message": "An internal server error occurred.",
                    "debug_id": _id("dbg")}
        return {"name": "INVALID_REQUEST", "message": "Request is not well-formed, syntactically incorrect, or "
                "violates schema.", "debug_id": _id("dbg"), "details": [{"issue": "INVALID_PARAMETER_SYNTAX"}]}

    @staticmethod
    def _time() -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def _event(self, type_: str, resource_type: str, resource: dict) -> dict:
        event = {
            "id": _id("WH").replace("_", "-"), "event_version": "1.0", "create_time": self._time(),
            "resource_type": resource_type, "resource_version": "2.0", "event_type": type_,
            "summary": type_.replace(".", " ").title(), "resource": json.loads(json.dumps(resource)), "links": [],
        }
        self.violations += [f"event {type_}: {p}" for p in paypal_event_problems(event)]
        self.events.append(event)
        return event

    def sign(self, raw_body: bytes, *, transmission_time: str | None = None, webhook_id: str | None = None,
             key: bytes | None = None) -> dict:
        """Headers PayPal sends with a webhook delivery of `raw_body`."""
        transmission_time = transmission_time or self._time()
        while True:
            # PayPal's description patterns a signature as `^(?!\d+$)\w+\S+` (it starts
            # with a word character); base64 starts with + or / one time in 32, so a
            # transmission whose signature would is sent under another id.
            transmission_id = _id("tx")
            message = f"{transmission_id}|{transmission_time}|{webhook_id or self.webhook_id}|{zlib.crc32(raw_body)}"
            digest = hmac.new(key or self.signing_key, message.encode(), hashlib.sha256).digest()
            sig = base64.b64encode(digest).decode()
            if sig[0] not in "+/":
                break
        return {
            "PAYPAL-TRANSMISSION-ID": transmission_id, "PAYPAL-TRANSMISSION-TIME": transmission_time,
            "PAYPAL-TRANSMISSION-SIG": sig, "PAYPAL-AUTH-ALGO": "SHA256withRSA",
            "PAYPAL-CERT-URL": "https://api-m.paypal.com/v1/notifications/certs/CERT-fake",
        }

    def dispute(self, capture_id: str, *, reason: str = "MERCHANDISE_OR_SERVICE_NOT_RECEIVED") -> dict:
        """The buyer opens a dispute (Disputes API v1 resource, as the webhook carries it)."""
        with self.lock:
            capture = self.captures[capture_id]
            dispute = {
                "dispute_id": "PP-D-" + _id("d")[2:].upper(), "create_time": self._time(), "update_time": self._time(),
                "disputed_transactions": [{"seller_transaction_id": capture_id}],
                "reason": reason, "status": "OPEN", "dispute_life_cycle_stage": "INQUIRY",
                "dispute_amount": dict(capture["amount"]),
            }
            dispute["links"] = [{"href": f"{self.url}/v1/customer/disputes/{dispute['dispute_id']}", "rel": "self",
                                 "method": "GET"}]
            self.disputes[dispute["dispute_id"]] = dispute
            return self._event("CUSTOMER.DISPUTE.CREATED", "dispute", dispute)

    def resolve_dispute(self, dispute_id: str, *, buyer_wins: bool | None = None, outcome_code: str | None = None,
                        report_amount_refunded: bool = True) -> dict:
        """PayPal decides, with any of its outcome codes (`buyer_wins` is shorthand for
        RESOLVED_BUYER_FAVOUR / RESOLVED_SELLER_FAVOUR). When the merchant pays (the buyer
        won, or the merchant accepted the claim) the buyer gets back what is left of the
        capture (never more: after a partial refund only the rest); a payout is PayPal's
        own money. What went back is the outcome's `amount_refunded`, which PayPal's
        description makes optional."""
        code = outcome_code or ("RESOLVED_BUYER_FAVOUR" if buyer_wins else "RESOLVED_SELLER_FAVOUR")
        with self.lock:
            dispute = self.disputes[dispute_id]
            dispute["status"] = "RESOLVED"
            outcome: dict[str, Any] = {"outcome_code": code}
            claimed = dispute["dispute_amount"]
            returned = None
            if code in ("RESOLVED_BUYER_FAVOUR", "ACCEPTED"):
                capture_id = dispute["disputed_transactions"][0]["seller_transaction_id"]
                returned = min(Decimal(claimed["value"]), self._refundable(capture_id))
                self._reversed[capture_id] = self._reversed.get(capture_id, Decimal("0")) + returned
            elif code == "RESOLVED_WITH_PAYOUT":
                returned = Decimal(claimed["value"])
            if returned is not None and report_amount_refunded:
                outcome["amount_refunded"] = {"currency_code": claimed["currency_code"], "value": f"{returned:f}"}
            dispute["dispute_outcome"] = outcome
            return self._event("CUSTOMER.DISPUTE.RESOLVED", "dispute", dispute)

    def update_dispute(self, dispute_id: str, status: str) -> dict:
        """The dispute moves on (WAITING_FOR_SELLER_RESPONSE, UNDER_REVIEW, ...)."""
        with self.lock:
            dispute = self.disputes[dispute_id]
            dispute.update(status=status, update_time=self._time())
            return self._event("CUSTOMER.DISPUTE.UPDATED", "dispute", dispute)

    def _refundable(self, capture_id: str) -> Decimal:
        """What is left of a capture: less refunds that may still pay out, and reversals."""
        capture = self.captures[capture_id]
        spoken = sum((Decimal(r["amount"]["value"]) for r in self.refunds.values()
                      if self._refund_capture[r["id"]] == capture_id and r["status"] in ("PENDING", "COMPLETED")), Decimal("0"))
        return Decimal(capture["amount"]["value"]) - spoken - self._reversed.get(capture_id, Decimal("0"))

    def approve(self, order_id: str, *, funding: str = "ok") -> dict:
        """The buyer approves on PayPal's page. `funding` says what capturing then does:
        "ok" completes; "declines" is refused 422 INSTRUMENT_DECLINED (the buyer's bank or
        card said no); "pending" gives a PENDING capture (e.g. an eCheck), completed later
        by `complete_capture`."""
        with self.lock:
            order = self.orders[order_id]
            order["_funding"] = funding
            order["status"] = "APPROVED"
            order["payer"] = {"payer_id": PAYER_ID, "email_address": "buyer@example.com"}
            return self._event("CHECKOUT.ORDER.APPROVED", "checkout-order", self._public(order))

    def _err(self, status: int, name: str, issue: str) -> FakeError:
        return FakeError(status, {"name": name, "message": issue, "debug_id": _id("dbg"), "details": [{"issue": issue}]})

    def handle(self, method, path, query, headers, raw):
        if path == "/v1/oauth2/token":
            expected = "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            if headers.get("Authorization") != expected:
                raise FakeError(401, {"error": "invalid_client", "error_description": "Client Authentication failed"})
            token = _id("A21AA")
            self.tokens.add(token)
            return 200, {"scope": "https://uri.paypal.com/services/payments/payment", "access_token": token,
                         "token_type": "Bearer", "app_id": "APP-FAKE", "expires_in": 32400, "nonce": _id("n")}
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            raise FakeError(401, {"error": "invalid_token", "error_description": "Token signature verification failed"})
        if path == "/v1/notifications/verify-webhook-signature":
            return 200, {"verification_status": self._verify(raw)}
        m = re.fullmatch(r"/v2/checkout/orders(?:/([^/]+))?(?:/(capture))?", path)
        if m:
            order_id, action = m.groups()
            if method == "POST" and order_id is None:
                return 200, self._create_order(json.loads(raw or b"{}"))
            order = self.orders.get(order_id)
            if order is None:
                raise self._err(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
            if action == "capture":
                return 201, self._capture(order)
            return 200, self._public(order)
        m = re.fullmatch(r"/v2/payments/captures/([^/]+)/refund", path)
        if m and method == "POST":
            return 201, self._refund(m.group(1), json.loads(raw or b"{}"))
        m = re.fullmatch(r"/v2/payments/captures/([^/]+)", path)
        if m and m.group(1) in self.captures:
            return 200, self.captures[m.group(1)]
        m = re.fullmatch(r"/v2/payments/refunds/([^/]+)", path)
        if m and method == "GET" and m.group(1) in self.refunds:
            return 200, self.refunds[m.group(1)]
        raise self._err(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")

    def _verify(self, raw: bytes) -> str:
        text = raw.decode()
        body = json.loads(text)
        # The exact bytes of `webhook_event` as sent, as PayPal's CRC covers them.
        start = re.search(r'"webhook_event"\s*:\s*', text).end()
        _value, end = json.JSONDecoder().raw_decode(text, start)
        event_bytes = text[start:end].encode()
        if body.get("webhook_id") != self.webhook_id:
            return "FAILURE"
        message = f"{body['transmission_id']}|{body['transmission_time']}|{body['webhook_id']}|{zlib.crc32(event_bytes)}"
        expected = base64.b64encode(hmac.new(self.signing_key, message.encode(), hashlib.sha256).digest()).decode()
        return "SUCCESS" if hmac.compare_digest(expected, body.get("transmission_sig", "")) else "FAILURE"

    def _create_order(self, body: dict) -> dict:
        units = body.get("purchase_units") or []
        if body.get("intent") != "CAPTURE" or not units:
            raise self._err(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER")
        for unit in units:
            issue = paypal_amount_issue(unit.get("amount") or {})
            if issue:
                raise self._err(422, "UNPROCESSABLE_ENTITY", issue)
        order_id = _id("ORD").replace("_", "").upper()[:17]
        context = ((body.get("payment_source") or {}).get("paypal") or {}).get("experience_context") or {}
        order = {
            "id": order_id, "intent": "CAPTURE", "status": "PAYER_ACTION_REQUIRED" if context else "CREATED",
            "purchase_units": [
                {"reference_id": u.get("reference_id", "default"), "amount": u["amount"],
                 "payee": {"merchant_id": MERCHANT_ID},
                 **{k: u[k] for k in ("custom_id", "invoice_id", "description") if u.get(k) is not None}}
                for u in units
            ],
            "create_time": self._time(),
            "links": [
                {"href": f"{self.url}/v2/checkout/orders/{order_id}", "rel": "self", "method": "GET"},
                {"href": f"https://www.sandbox.paypal.com/checkoutnow?token={order_id}",
                 "rel": "payer-action" if context else "approve", "method": "GET"},
                {"href": f"{self.url}/v2/checkout/orders/{order_id}/capture", "rel": "capture", "method": "POST"},
            ],
        }
        if self.omit_approval_link:
            order["links"] = [lk for lk in order["links"] if lk["rel"] not in ("payer-action", "approve")]
        self.orders[order_id] = order
        return order

    def _capture(self, order: dict) -> dict:
        if order["status"] == "COMPLETED":
            raise self._err(422, "UNPROCESSABLE_ENTITY", "ORDER_ALREADY_CAPTURED")
        if order["status"] != "APPROVED":
            raise self._err(422, "UNPROCESSABLE_ENTITY", "ORDER_NOT_APPROVED")
        funding = order.get("_funding", "ok")
        if funding == "declines":
            # orders.capture-422 INSTRUMENT_DECLINED; the order stays APPROVED-able again.
            raise FakeError(422, {
                "name": "UNPROCESSABLE_ENTITY", "debug_id": _id("dbg"),
                "message": "The requested action could not be performed, semantically incorrect, or failed "
                           "business validation.",
                "details": [{"issue": "INSTRUMENT_DECLINED", "description": "The instrument presented  was either "
                             "declined by the processor or bank, or it can't be used for this payment."}],
                "links": [{"href": f"https://www.sandbox.paypal.com/checkoutnow?token={order['id']}",
                           "rel": "redirect", "method": "GET"}]})
        unit = order["purchase_units"][0]
        capture = {
            "id": _id("CAP").replace("_", "").upper()[:17], "status": "COMPLETED", "amount": unit["amount"],
            "final_capture": True, **{k: unit[k] for k in ("custom_id", "invoice_id") if k in unit},
            "seller_protection": {"status": "ELIGIBLE"},
            "seller_receivable_breakdown": {"gross_amount": unit["amount"]},
            "create_time": self._time(), "update_time": self._time(),
            "supplementary_data": {"related_ids": {"order_id": order["id"]}},
            "links": [{"href": f"{self.url}/v2/checkout/orders/{order['id']}", "rel": "up", "method": "GET"}],
        }
        self.captures[capture["id"]] = capture
        unit["payments"] = {"captures": [capture]}
        order["status"] = "COMPLETED"
        if funding == "pending":
            capture.update(status="PENDING", status_details={"reason": "ECHECK"})
            self._event("PAYMENT.CAPTURE.PENDING", "capture", capture)
        else:
            self._event("PAYMENT.CAPTURE.COMPLETED", "capture", capture)
        return self._public(order)

    def complete_capture(self, capture_id: str) -> dict:
        """A PENDING capture clears: PayPal sends PAYMENT.CAPTURE.COMPLETED."""
        with self.lock:
            capture = self.captures[capture_id]
            capture["status"] = "COMPLETED"
            capture.pop("status_details", None)
            capture["update_time"] = self._time()
            return self._event("PAYMENT.CAPTURE.COMPLETED", "capture", capture)

    @staticmethod
    def _public(order: dict) -> dict:
        """The order as PayPal shows it: without the fake's own keys, and its captures
        without the payments API's supplementary_data (not in the order's description)."""
        shown = json.loads(json.dumps({k: v for k, v in order.items() if not k.startswith("_")}))
        for unit in shown.get("purchase_units") or []:
            for capture in (unit.get("payments") or {}).get("captures") or []:
                capture.pop("supplementary_data", None)
        return shown

    def _refund(self, capture_id: str, body: dict) -> dict:
        capture = self.captures.get(capture_id)
        if capture is None:
            raise self._err(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
        left = self._refundable(capture_id)
        if left <= 0:
            raise self._err(422, "UNPROCESSABLE_ENTITY", "CAPTURE_FULLY_REFUNDED")
        amount = body.get("amount") or {"currency_code": capture["amount"]["currency_code"], "value": f"{left:f}"}
        issue = paypal_amount_issue(amount, refund=True)
        if issue:
            raise self._err(422, "UNPROCESSABLE_ENTITY", issue)
        if Decimal(amount["value"]) > left:
            raise self._err(422, "UNPROCESSABLE_ENTITY", "REFUND_AMOUNT_EXCEEDED")
        refund_id = _id("REF").replace("_", "").upper()[:17]
        refund = {  # PayPal's `refund` schema (payments_payment_v2.json)
            "id": refund_id, "status": self.refund_outcome, "amount": amount,
            **{k: body[k] for k in ("custom_id", "invoice_id", "note_to_payer") if body.get(k) is not None},
            "seller_payable_breakdown": {"gross_amount": amount, "net_amount": amount,
                                         "total_refunded_amount": amount},
            "create_time": self._time(), "update_time": self._time(),
            "links": [{"href": f"{self.url}/v2/payments/refunds/{refund_id}", "rel": "self", "method": "GET"},
                      {"href": f"{self.url}/v2/payments/captures/{capture_id}", "rel": "up", "method": "GET"}],
        }
        if refund["status"] == "PENDING":
            refund["status_details"] = {"reason": "ECHECK"}
        refund = {k: v for k, v in refund.items() if v is not None}  # PayPal omits what it lacks; never null
        self.refunds[refund_id] = refund
        self._refund_capture[refund_id] = capture_id
        order = self.orders.get(((capture.get("supplementary_data") or {}).get("related_ids") or {}).get("order_id", ""))
        if order is not None:  # the order's payment collection lists its refunds
            order["purchase_units"][0].setdefault("payments", {}).setdefault("refunds", []).append(refund)
        self._capture_refund_status(capture_id)
        self._event("PAYMENT.CAPTURE.REFUNDED" if refund["status"] == "COMPLETED" else "PAYMENT.REFUND.PENDING",
                    "refund", refund)
        return refund

    def _capture_refund_status(self, capture_id: str) -> None:
        capture = self.captures[capture_id]
        done = sum((Decimal(r["amount"]["value"]) for r in self.refunds.values()
                    if self._refund_capture[r["id"]] == capture_id and r["status"] == "COMPLETED"), Decimal("0"))
        if done > 0:
            capture["status"] = "REFUNDED" if done >= Decimal(capture["amount"]["value"]) else "PARTIALLY_REFUNDED"

    # PayPal's refund states: PENDING goes on to COMPLETED, FAILED or CANCELLED.
    _REFUND_MOVES = {"PENDING": {"COMPLETED", "FAILED", "CANCELLED"}}

    def settle_refund(self, refund_id: str, status: str) -> list[dict]:
        """PayPal finishes a pending refund. Returns the events it sends: PAYMENT.CAPTURE.REFUNDED
        when completed, PAYMENT.REFUND.FAILED when failed; none is documented for a
        cancelled one (reconciliation finds it)."""
        with self.lock:
            refund = self.refunds[refund_id]
            if status not in self._REFUND_MOVES.get(refund["status"], set()):
                raise ValueError(f"A {refund['status']} PayPal refund cannot become {status}.")
            sent_from = len(self.events)
            refund["status"] = status
            refund["update_time"] = self._time()
            if status == "FAILED":
                refund["status_details"] = {"reason": "ECHECK"}
            else:
                refund.pop("status_details", None)
            self._capture_refund_status(self._refund_capture[refund_id])
            if status == "COMPLETED":
                self._event("PAYMENT.CAPTURE.REFUNDED", "refund", refund)
            elif status == "FAILED":
                self._event("PAYMENT.REFUND.FAILED", "refund", refund)
            return self.events[sent_from:]
