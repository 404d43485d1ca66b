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
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):06d}{hashlib.sha1(str(time.time_ns()).encode()).hexdigest()[:10]}"


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


class FakeProvider:
    """A threaded HTTP server; subclasses route requests to `handle(method, path, query, headers, body)`."""

    idempotency_header = ""

    def __init__(self):
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str]] = []
        self._idempotent: dict[str, _Stored] = {}
        self._stalls: list[tuple[str, float]] = []
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

    def count(self, method: str, path_prefix: str) -> int:
        return sum(1 for m, p in self.requests if m == method and p.startswith(path_prefix))

    def _dispatch(self, method: str, target: str, headers, raw: bytes):
        parts = urlsplit(target)
        path, query = parts.path, parts.query
        stall = 0.0
        with self.lock:
            self.requests.append((method, path))
            for i, (prefix, seconds) in enumerate(self._stalls):
                if path.startswith(prefix):
                    stall = seconds
                    del self._stalls[i]
                    break
            key = headers.get(self.idempotency_header) if method == "POST" and self.idempotency_header else None
            fingerprint = hashlib.sha256(method.encode() + path.encode() + raw).hexdigest()
            if key and key in self._idempotent:
                stored = self._idempotent[key]
                if stored.fingerprint != fingerprint:
                    status, body = self.idempotency_mismatch()
                    return status, json.dumps(body).encode(), {}, stall
                return stored.status, stored.body, {"Idempotent-Replayed": "true"}, stall
            try:
                status, body = self.handle(method, path, query, headers, raw)
            except FakeError as exc:
                status, body = exc.status, exc.body
            encoded = json.dumps(body).encode()
            if key and status < 500:
                self._idempotent[key] = _Stored(fingerprint, status, encoded)
            return status, encoded, {}, stall

    def handle(self, method, path, query, headers, raw):  # pragma: no cover - abstract
        raise NotImplementedError

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


@dataclass
class FakeStripe(FakeProvider):
    """`https://api.stripe.com/v1/...` for customers, Checkout Sessions, PaymentIntents,
    SetupIntents, PaymentMethods, Refunds and Events."""

    api_key: str = "sk_test_fake"
    objects: dict[str, dict] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    declining_methods: set[str] = field(default_factory=set)
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
        self.events.append(event)
        return event

    def make_card(self, *, customer: str | None = None, brand: str = "visa", last4: str = "4242",
                  declines: bool = False) -> dict:
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
        return pm

    def complete_checkout(self, session_id: str, *, declines: bool = False) -> list[dict]:
        """The customer finishes the hosted page. Returns the events Stripe would send, in order."""
        with self.lock:
            session = self.objects[session_id]
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
                metadata=dict((session.get("payment_intent_data") or {}).get("metadata") or session["metadata"]),
            )
            self._localise(session, pi)
            session["payment_intent"] = pi["id"]
            self._confirm(pi, pm["id"])
            if pi["status"] == "succeeded":
                session.update(status="complete", payment_status="paid")
                self._event("checkout.session.completed", session)
            return self.events[sent_from:]

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

    def dispute(self, charge_id: str) -> dict:
        charge = self.objects[charge_id]
        dispute = {
            "id": _id("dp"), "object": "dispute", "amount": charge["amount"], "currency": charge["currency"],
            "charge": charge_id, "payment_intent": charge["payment_intent"], "reason": "fraudulent",
            "status": "needs_response", "created": self.now(), "livemode": False,
        }
        self.objects[dispute["id"]] = dispute
        return self._event("charge.dispute.created", dispute)

    def close_dispute(self, dispute_id: str, *, won: bool) -> dict:
        """The bank decided: Stripe sets the dispute's status to won or lost."""
        dispute = self.objects[dispute_id]
        dispute["status"] = "won" if won else "lost"
        return self._event("charge.dispute.closed", dispute)

    # --- the API -------------------------------------------------------------------

    def idempotency_mismatch(self):
        return 400, {"error": {"type": "idempotency_error", "message": "Keys for idempotent requests can only be used with the same parameters they were first used with."}}

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
            return 200, self._get(p[2], "cs_")
        if p[0] == "payment_intents":
            if method == "POST" and len(p) == 1:
                return self._create_payment_intent(params)
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
            if method == "POST":
                return 200, self._create_refund(params)
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
            "payment_intent_data": params.get("payment_intent_data") or {},
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
        return session

    def _new_payment_intent(self, *, amount: int, currency: str, customer, metadata) -> dict:
        pi = {
            "id": _id("pi"), "object": "payment_intent", "amount": amount, "amount_received": 0,
            "currency": currency, "customer": customer, "metadata": metadata, "status": "requires_payment_method",
            "latest_charge": None, "payment_method": None, "last_payment_error": None,
            "presentment_details": None, "created": self.now(), "livemode": False,
        }
        self.objects[pi["id"]] = pi
        return pi

    def _confirm(self, pi: dict, pm_id: str) -> None:
        pi["payment_method"] = pm_id
        if pm_id in self.declining_methods:
            pi["status"] = "requires_payment_method"
            pi["last_payment_error"] = {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
                                        "message": "Your card has insufficient funds.", "payment_method": {"id": pm_id}}
            self._event("payment_intent.payment_failed", pi)
            return
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
            # payment_method_types has automatic payment methods on, and confirming one
            # needs a return_url unless redirects are refused (Stripe's own answer).
            apm = params.get("automatic_payment_methods") or {}
            if (not params.get("payment_method_types") and not params.get("return_url")
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
            self._confirm(pi, pm_id)
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
        refund = {
            "id": _id("re"), "object": "refund", "amount": amount, "currency": charge["currency"],
            "charge": charge["id"], "payment_intent": charge["payment_intent"], "status": "succeeded",
            "reason": params.get("reason"), "metadata": params.get("metadata") or {}, "created": self.now(),
        }
        self.objects[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        self._event("refund.created", refund)
        self._event("charge.refunded", charge)
        return refund


# --------------------------------------------------------------------------- PayPal

# The providers' published descriptions (../shared/specs, see its README), beside the project.
SPECS_DIR = next((p for p in (Path(__file__).resolve().parents[2].parent / "shared" / "specs",
                              Path("/work/shared/specs")) if p.is_dir()), None)


@cache
def paypal_request_schema(spec_file: str, path: str, method: str) -> Any:
    """A validator for the JSON body PayPal's own description gives `method path`, or None
    where the descriptions are not beside the project."""
    import jsonschema

    if SPECS_DIR is None:
        return None
    doc = json.loads((SPECS_DIR / "paypal" / spec_file).read_text())
    schema = doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    return jsonschema.Draft4Validator({**schema, "components": doc["components"]})



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
    webhook_id: str = "WH-FAKE-1"
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

    idempotency_header = "PayPal-Request-Id"

    def __post_init__(self):
        FakeProvider.__init__(self)

    def idempotency_mismatch(self):
        return 422, {"name": "UNPROCESSABLE_ENTITY", "message": "Request id reused with another body.",
                     "details": [{"issue": "DUPLICATE_REQUEST_ID"}]}

    @staticmethod
    def _time() -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def _event(self, type_: str, resource_type: str, resource: dict) -> dict:
        event = {
            "id": _id("WH").replace("_", "-"), "event_version": "1.0", "create_time": self._time(),
            "resource_type": resource_type, "resource_version": "2.0", "event_type": type_,
            "summary": type_.replace(".", " ").title(), "resource": json.loads(json.dumps(resource)), "links": [],
        }
        self.events.append(event)
        return event

    def sign(self, raw_body: bytes, *, transmission_time: str | None = None, webhook_id: str | None = None,
             key: bytes | None = None) -> dict:
        """Headers PayPal sends with a webhook delivery of `raw_body`."""
        transmission_id = _id("tx")
        transmission_time = transmission_time or self._time()
        message = f"{transmission_id}|{transmission_time}|{webhook_id or self.webhook_id}|{zlib.crc32(raw_body)}"
        sig = base64.b64encode(hmac.new(key or self.signing_key, message.encode(), hashlib.sha256).digest()).decode()
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
                "disputed_transactions": [{"seller_transaction_id": capture_id, "seller_protection_eligible": False}],
                "reason": reason, "status": "OPEN", "dispute_life_cycle_stage": "INQUIRY",
                "dispute_amount": dict(capture["amount"]), "links": [],
            }
            self.disputes[dispute["dispute_id"]] = dispute
            return self._event("CUSTOMER.DISPUTE.CREATED", "dispute", dispute)

    def resolve_dispute(self, dispute_id: str, *, buyer_wins: bool) -> dict:
        with self.lock:
            dispute = self.disputes[dispute_id]
            dispute["status"] = "RESOLVED"
            dispute["dispute_outcome"] = {
                "outcome_code": "RESOLVED_BUYER_FAVOUR" if buyer_wins else "RESOLVED_SELLER_FAVOUR",
                **({"amount_refunded": dict(dispute["dispute_amount"])} if buyer_wins else {}),
            }
            return self._event("CUSTOMER.DISPUTE.RESOLVED", "dispute", dispute)

    def approve(self, order_id: str) -> dict:
        """The buyer approves on PayPal's page."""
        with self.lock:
            order = self.orders[order_id]
            order["status"] = "APPROVED"
            order["payer"] = {"payer_id": "PAYERFAKE1", "email_address": "buyer@example.com"}
            return self._event("CHECKOUT.ORDER.APPROVED", "checkout-order", order)

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
            return 200, order
        m = re.fullmatch(r"/v2/payments/captures/([^/]+)/refund", path)
        if m and method == "POST":
            return 201, self._refund(m.group(1), json.loads(raw or b"{}"))
        m = re.fullmatch(r"/v2/payments/captures/([^/]+)", path)
        if m and m.group(1) in self.captures:
            return 200, self.captures[m.group(1)]
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
                {"reference_id": u.get("reference_id", "default"), "custom_id": u.get("custom_id"),
                 "invoice_id": u.get("invoice_id"), "description": u.get("description"), "amount": u["amount"],
                 "payee": {"merchant_id": "MERCHANTFAKE"}}
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
        unit = order["purchase_units"][0]
        capture = {
            "id": _id("CAP").replace("_", "").upper()[:17], "status": "COMPLETED", "amount": unit["amount"],
            "final_capture": True, "custom_id": unit.get("custom_id"), "invoice_id": unit.get("invoice_id"),
            "seller_protection": {"status": "ELIGIBLE"},
            "seller_receivable_breakdown": {"gross_amount": unit["amount"]},
            "create_time": self._time(), "update_time": self._time(),
            "supplementary_data": {"related_ids": {"order_id": order["id"]}},
            "links": [{"href": f"{self.url}/v2/checkout/orders/{order['id']}", "rel": "up", "method": "GET"}],
        }
        self.captures[capture["id"]] = capture
        unit["payments"] = {"captures": [capture]}
        order["status"] = "COMPLETED"
        self._event("PAYMENT.CAPTURE.COMPLETED", "capture", capture)
        return order

    def _refund(self, capture_id: str, body: dict) -> dict:
        validator = paypal_request_schema("payments_payment_v2.json", "/v2/payments/captures/{capture_id}/refund", "post")
        if validator is not None and not validator.is_valid(body):
            raise self._err(400, "INVALID_REQUEST", "INVALID_PARAMETER_SYNTAX")
        capture = self.captures.get(capture_id)
        if capture is None:
            raise self._err(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
        amount = body.get("amount") or capture["amount"]
        issue = paypal_amount_issue(amount, refund=True)
        if issue:
            raise self._err(422, "UNPROCESSABLE_ENTITY", issue)
        refund = {
            "id": _id("REF").replace("_", "").upper()[:17], "status": "COMPLETED", "amount": amount,
            "custom_id": body.get("custom_id"), "invoice_id": body.get("invoice_id"),
            "note_to_payer": body.get("note_to_payer"), "create_time": self._time(),
            "links": [{"href": f"{self.url}/v2/payments/captures/{capture_id}", "rel": "up", "method": "GET"}],
        }
        self.refunds[refund["id"]] = refund
        self._event("PAYMENT.CAPTURE.REFUNDED", "refund", refund)
        return refund
