"""Portal pages for payments, the sandbox's hosted pages, and the provider webhooks.

Views parse, call one service and render. Every object is fetched with the member's
organisation, so another organisation's id is a 404. The two webhook endpoints are the
only CSRF-exempt views: they are authenticated by the provider's signature instead.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime

import stripe
from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.portal import portal_view
from accounts.scopes import ROLE_SCOPES
from core.api.exceptions import error_body
from core.api.parsers import loads_bounded
from core.errors import DomainError
from core.formatting import sentence
from core.money import format_money
from credits import services as credits_services
from credits.forms import TopUpForm
from invoices.models import Invoice
from payments import receipts, selectors, services, webhooks
from payments.forms import InvoicePaymentForm, SandboxCardForm, pay_with_choices
from payments.gateways import card_gateway_for, card_provider, checkout_providers, gateway_for
from payments.gateways.base import SavedMethod
from payments.gateways.sandbox import DECLINING_PREFIX
from payments.models import Flow, Payment, PaymentMethod, PaymentStatus, Provider, Purpose, Receipt

logger = logging.getLogger(__name__)


def _urls(request, payment: Payment) -> tuple[str, str]:
    back = request.build_absolute_uri(reverse("payments:return", args=[payment.pk]))
    cancel = request.build_absolute_uri(reverse("payments:detail", args=[payment.pk])) + "?canceled=1"
    return back, cancel


def _can_pay(request) -> bool:
    return "billing:write" in ROLE_SCOPES[request.membership.role]


SAVED_CARD = "saved_card"  # the top-up form's choice of the default saved card


def _saved_card(org) -> PaymentMethod | None:
    """The card a saved-card top-up charges: the default card of the card provider
    (credits' handler, `payments.card_topups.charge_topup`, charges exactly this one)."""
    return services.default_method(org, card_provider())


def _topup_form(org, data=None) -> tuple[TopUpForm, PaymentMethod | None]:
    card = _saved_card(org)
    pay_with = ([(SAVED_CARD, f"Saved card {card.brand} ····{card.last4}")] if card else []) + pay_with_choices(
        checkout_providers())
    initial = {"amount": settings.CREDITS_TOPUP_PRESETS[1], "request_key": secrets.token_hex(16)}
    return TopUpForm(data, currency=org.currency, pay_with=pay_with, initial=initial, auto_id="topup_%s"), card


@portal_view("billing:read")
def index(request):
    org = request.membership.organization
    providers = checkout_providers()
    return render(request, "payments/index.html", {
        "org": org,
        "providers": providers,
        "sandbox": Provider.SANDBOX in providers,
        "can_pay": _can_pay(request),
        "presets": settings.CREDITS_TOPUP_PRESETS,
        "topup_form": _topup_form(org)[0],
        "open_invoices": selectors.open_invoices(org),
        "methods": PaymentMethod.objects.filter(organization=org, detached_at=None),
        "card_provider": card_provider(),
        "payments": selectors.payment_history(org)[:50],
        "receipts": Receipt.objects.filter(organization=org).order_by("-issued_at", "-id")[:50],
        "dunning": selectors.active_dunning(org),
    })


def _start(request, *, back: str, **kwargs):
    try:
        payment = services.payment_start_checkout(
            organization=request.membership.organization, actor=request.user,
            urls=lambda p: _urls(request, p), **kwargs)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect(back)
    return redirect(payment.checkout_url)


def _topup_page(request, form: TopUpForm, card: PaymentMethod | None, *, status: int = 200):
    return render(request, "payments/topup.html", {"form": form, "org": request.membership.organization,
                                                   "card": card, "presets": settings.CREDITS_TOPUP_PRESETS},
                  status=status)


@portal_view("billing:write")
def topup(request):
    """The one top-up flow: an amount and how to pay (`credits.forms.TopUpForm`, the same
    form the Payments and Credits pages show). A hosted checkout opens at once (it
    supersedes the organisation's unfinished top-up checkouts); the saved card is charged
    only after a confirmation page naming it and the amount, and only if it is still the
    card named there. Errors are shown on the field, in words that say what is wrong."""
    org = request.membership.organization
    if request.method != "POST":
        form, card = _topup_form(org)
        if "amount" in request.GET:  # from a preset or the Credits page: say at once what is wrong
            form, card = _topup_form(org, {"amount": request.GET["amount"], "provider": form.initial.get("provider"),
                                           "request_key": form.initial["request_key"]})
            form.is_valid()
        return _topup_page(request, form, card)
    form, card = _topup_form(org, request.POST)
    if not form.is_valid():
        return _topup_page(request, form, card, status=400)
    amount, provider = form.cleaned_data["amount"], form.cleaned_data["provider"]
    if provider != SAVED_CARD:
        return _start(request, back=reverse("payments:topup"), purpose=Purpose.TOPUP, provider=provider, amount=amount)
    assert card is not None  # the choice exists only with a saved card
    confirmed = request.POST.get("confirm_card", "")
    if confirmed != str(card.pk):
        if confirmed:
            messages.warning(request, "Your default card changed. Check the card below, then confirm again.")
        return render(request, "payments/topup_confirm.html", {"form": form, "card": card, "amount": amount,
                                                               "org": org})
    try:
        credits_services.topup_request(organization=org, amount=amount, actor=request.user,
                                       request_key=form.cleaned_data["request_key"] or None)
    except DomainError as exc:
        form.add_error("amount", exc.message)
        return _topup_page(request, form, card, status=400)
    messages.success(request, f"Charging {format_money(amount, org.currency)} to {card.brand} ····{card.last4}. "
                              "The credit appears as soon as the card is charged.")
    return redirect("credits:index")


@portal_view("billing:write", model=Invoice)
@require_POST
def pay_invoice(request, invoice_id: int):
    invoice = get_object_or_404(selectors.invoices_of(request.membership.organization), pk=invoice_id)
    back = (reverse("invoices:detail", args=[invoice.pk]) if request.POST.get("back") == "invoice"
            else reverse("payments:index"))
    form = InvoicePaymentForm(request.POST, providers=checkout_providers())
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        messages.error(request, f"Invoice {invoice.number or invoice.pk}: {errors[0]}" if field == "amount"
                       else f"Invoice {invoice.number or invoice.pk}: choose how to pay.")
        return redirect(back)
    # Starting a checkout supersedes the invoice's unfinished ones (expired at the provider).
    return _start(request, back=back, purpose=Purpose.INVOICE, provider=form.cleaned_data["provider"],
                  amount=form.cleaned_data["amount"], invoice=invoice)


@portal_view("billing:read", model=Payment)
def detail(request, pk: int):
    payment = get_object_or_404(Payment.objects.select_related("invoice", "payment_method"),
                                pk=pk, organization=request.membership.organization)
    if request.GET.get("canceled") and payment.status in (PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION):
        messages.info(request, "Checkout was left without paying. You can start again at any time.")
    return render(request, "payments/detail.html", {"payment": payment, "refunds": payment.refunds.all()})


@portal_view("billing:read", model=Receipt)
def receipt_pdf(request, pk: int):
    receipt = get_object_or_404(Receipt, pk=pk, organization=request.membership.organization)
    receipt = receipts.receipt_ensure_pdf(receipt_id=receipt.pk)
    return FileResponse(receipt.pdf.open("rb"), as_attachment=True, filename=receipts.receipt_filename(receipt),
                        content_type="application/pdf")


@portal_view("billing:read", model=Payment)
def provider_return(request, pk: int):
    """Back from the provider's page: ask the provider where the payment stands rather
    than wait for the webhook (both paths apply the result once)."""
    payment = get_object_or_404(Payment, pk=pk, organization=request.membership.organization)
    # Only an open payment is asked about: a canceled one (a checkout a newer one replaced)
    # is never captured, though PayPal may send its buyer here after approving it late.
    if payment.status in services.lifecycle.OPEN_STATUSES and payment.provider in (
            Provider.STRIPE, Provider.PAYPAL):
        try:
            gateway = gateway_for(payment.provider)
            snapshot = gateway.capture(payment) if payment.provider == Provider.PAYPAL else gateway.snapshot(payment)
            if snapshot is not None:
                payment = services.payment_apply_snapshot(payment_id=payment.pk, snapshot=snapshot)
        except DomainError as exc:
            logger.warning("payments: return sync of payment %s failed: %s", payment.pk, exc.message)
    if payment.status == PaymentStatus.SUCCEEDED:
        messages.success(request, "Payment received. Thank you.")
    elif payment.status == PaymentStatus.FAILED:
        messages.error(request, sentence(f"The payment failed: {payment.failure_message or 'declined'}"))
    else:
        messages.info(request, "We are waiting for the provider to confirm the payment.")
    return redirect("payments:detail", pk=payment.pk)


@portal_view("billing:write", model=Payment)
def confirm(request, pk: int):
    """The page an "ask to confirm" email links to: an automatic charge the bank held for
    the customer's authentication. POST confirms the same PaymentIntent on-session and
    sends the customer to Stripe's hosted authentication page; Stripe brings them back to
    the return page, which (like the webhook) applies the outcome once."""
    payment = get_object_or_404(Payment.objects.select_related("invoice", "payment_method"),
                                pk=pk, organization=request.membership.organization)
    waiting = (payment.status == PaymentStatus.REQUIRES_ACTION and payment.flow == Flow.OFF_SESSION
               and payment.provider == Provider.STRIPE)
    if not waiting:
        if payment.status == PaymentStatus.SUCCEEDED:
            messages.success(request, "This payment is confirmed and paid. Thank you.")
        else:
            messages.info(request, "This payment does not wait for a confirmation.")
        return redirect("payments:detail", pk=payment.pk)
    if request.method == "POST":
        back = request.build_absolute_uri(reverse("payments:return", args=[payment.pk]))
        try:
            page = services.payment_confirm_start(payment=payment, return_url=back, actor=request.user)
        except DomainError as exc:
            messages.error(request, exc.message)
            return redirect("payments:confirm", pk=payment.pk)
        return redirect(page) if page else redirect("payments:return", pk=payment.pk)
    return render(request, "payments/confirm.html", {"payment": payment})


# --- saved cards ------------------------------------------------------------------------


@portal_view("billing:write")
@require_POST
def method_add(request):
    org = request.membership.organization
    provider = card_provider()
    back = request.build_absolute_uri(reverse("payments:method_added")) + "?session_id={CHECKOUT_SESSION_ID}"
    try:
        started = card_gateway_for(provider).start_setup(org, success_url=back,
                                                         cancel_url=request.build_absolute_uri(reverse("payments:index")))
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("payments:index")
    return redirect(started.redirect_url)


@portal_view("billing:write")
def method_added(request):
    """Back from Stripe's hosted card form: save the card now (the webhook saves it too; once)."""
    from payments.gateways.stripe_gateway import client

    session_id = request.GET.get("session_id", "")
    org = request.membership.organization
    try:
        session = client().v1.checkout.sessions.retrieve(session_id).to_dict()
        if session.get("mode") != "setup" or (session.get("metadata") or {}).get("organization_id") != str(org.pk):
            raise Http404
        if session.get("setup_intent"):
            from payments.gateways.stripe_gateway import StripeGateway

            saved = StripeGateway().saved_method_from_setup_intent(session["setup_intent"])
            services.payment_method_save_safely(organization=org, provider=Provider.STRIPE, saved=saved,
                                                actor=request.user)
            messages.success(request, "Card saved.")
    except stripe.StripeError:
        messages.info(request, "Your card will appear here as soon as Stripe confirms it.")
    return redirect("payments:index")


@portal_view("billing:write", model=PaymentMethod)
@require_POST
def method_default(request, pk: int):
    method = get_object_or_404(PaymentMethod, pk=pk, organization=request.membership.organization, detached_at=None)
    services.payment_method_set_default(method=method, actor=request.user)
    messages.success(request, f"{method} is now the default.")
    return redirect("payments:index")


@portal_view("billing:write", model=PaymentMethod)
@require_POST
def method_remove(request, pk: int):
    method = get_object_or_404(PaymentMethod, pk=pk, organization=request.membership.organization, detached_at=None)
    services.payment_method_detach(method=method, actor=request.user)
    messages.success(request, f"{method} removed.")
    return redirect("payments:index")


# --- the sandbox's hosted pages ---------------------------------------------------------


def _require_sandbox() -> None:
    if Provider.SANDBOX not in checkout_providers():
        raise Http404("The sandbox is off: real payment providers are configured.")


@portal_view("billing:write", model=Payment)
def sandbox_checkout(request, pk: int):
    """SANDBOX stand-in for a provider's hosted checkout. No money moves."""
    _require_sandbox()
    payment = get_object_or_404(Payment, pk=pk, organization=request.membership.organization,
                                provider=Provider.SANDBOX)
    if request.method == "POST" and payment.status in (PaymentStatus.REQUIRES_ACTION, PaymentStatus.FAILED):
        outcome = "succeeded" if request.POST.get("outcome") == "pay" else "failed"
        event_id = f"sbx_evt_{payment.pk}_{outcome}" if outcome == "succeeded" else f"sbx_evt_{secrets.token_hex(8)}"
        webhooks.webhook_receive(provider=Provider.SANDBOX, event_id=event_id, event_type="sandbox.checkout.completed",
                                 payload={"payment_id": payment.pk, "outcome": outcome, "amount": str(payment.amount),
                                          "currency": payment.currency})
        return redirect("payments:return", pk=payment.pk)
    return render(request, "payments/sandbox_checkout.html", {"payment": payment})


@portal_view("billing:write")
def sandbox_add_card(request):
    """SANDBOX stand-in for a provider's hosted card form: pick a labelled test card."""
    _require_sandbox()
    form = SandboxCardForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        declining = form.cleaned_data["card"] == "declining"
        saved = SavedMethod(
            provider_method_id=f"{DECLINING_PREFIX if declining else 'sbx_pm_'}{secrets.token_hex(8)}",
            brand="Sandbox Visa", last4="0341" if declining else "4242", exp_month=12, exp_year=timezone.now().year + 3,
        )
        services.payment_method_save(organization=request.membership.organization, provider=Provider.SANDBOX,
                                     saved=saved, actor=request.user)
        messages.success(request, "Sandbox card saved.")
        return redirect("payments:index")
    return render(request, "payments/sandbox_add_card.html", {"form": form})


# --- provider webhooks ----------------------------------------------------------------


def _malformed(message: str) -> JsonResponse:
    return JsonResponse(error_body("malformed_event", message), status=400)


def _envelope(body: bytes, *, type_key: str, object_path: tuple[str, ...]) -> tuple[dict, str, str] | JsonResponse:
    """The event's id, type and object, as the provider's published event schema has
    them; a signed body without them is answered 400, never a 500."""
    try:
        payload = loads_bounded(body)
    except ValueError:
        return _malformed("The body is not JSON.")
    if not isinstance(payload, dict):
        return _malformed("An event is a JSON object.")
    event_id, event_type = payload.get("id"), payload.get(type_key)
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str) or not event_type:
        return _malformed(f"An event has a string id and {type_key}.")
    node: object = payload
    for key in object_path:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return _malformed(f"An event carries its object in {'.'.join(object_path)}.")
    return payload, event_id, event_type


def _receive(provider: str, payload: dict, event_id: str, event_type: str) -> HttpResponse:
    try:
        webhooks.webhook_receive(provider=provider, event_id=event_id, event_type=event_type, payload=payload)
    except webhooks.MalformedEvent as exc:
        # Stored and marked failed for staff to see; no redelivery can make it readable.
        return _malformed(str(exc))
    except Exception:
        logger.exception("payments: %s event %s failed; the provider will deliver it again", provider, event_id)
        return JsonResponse({"received": False}, status=500)
    return JsonResponse({"received": True})


@csrf_exempt
@require_POST
def stripe_webhook(request):
    if not settings.STRIPE_WEBHOOK_SECRET:
        raise Http404
    try:
        # Verified on the raw bytes: HMAC-SHA256 over "timestamp.body", within the tolerance.
        # Only the signature: the SDK's construct_event would also parse the body with an
        # unbounded json.loads; _envelope parses it with the bounded parser.
        stripe.WebhookSignature.verify_header(request.body.decode("utf-8"), request.headers.get("Stripe-Signature"),
                                              settings.STRIPE_WEBHOOK_SECRET, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE)
    except (ValueError, stripe.SignatureVerificationError):
        return JsonResponse(error_body("invalid_signature", "The Stripe-Signature header does not verify."),
                            status=400)
    envelope = _envelope(request.body, type_key="type", object_path=("data", "object"))
    if isinstance(envelope, JsonResponse):
        return envelope
    return _receive(Provider.STRIPE, *envelope)


@csrf_exempt
@require_POST
def paypal_webhook(request):
    from payments.gateways import paypal_configured
    from payments.gateways.paypal_gateway import PayPalGateway

    if not (paypal_configured() and settings.PAYPAL_WEBHOOK_ID):
        raise Http404
    try:
        sent = datetime.fromisoformat(request.headers.get("PAYPAL-TRANSMISSION-TIME", "").replace("Z", "+00:00"))
        age = abs((timezone.now() - sent.astimezone(UTC)).total_seconds())
    except ValueError:
        return JsonResponse({"error": "invalid transmission time"}, status=400)
    if age > settings.PAYPAL_WEBHOOK_TOLERANCE:
        return JsonResponse({"error": "stale delivery"}, status=400)
    try:
        verified = PayPalGateway().verify_webhook(headers=request.headers, raw_body=request.body)
    except DomainError:
        return JsonResponse({"error": "verification unavailable"}, status=503)
    if not verified:
        return JsonResponse({"error": "invalid signature"}, status=400)
    envelope = _envelope(request.body, type_key="event_type", object_path=("resource",))
    if isinstance(envelope, JsonResponse):
        return envelope
    return _receive(Provider.PAYPAL, *envelope)

