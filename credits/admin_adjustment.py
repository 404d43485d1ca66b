"""The console's "Adjust credit…" action, in two steps.

1. A form: the amount (in the currency's precision; beyond the staff limit,
   `CREDITS_ADJUSTMENT_STAFF_LIMITS`, only a superuser may post it), a reason category
   and a written reason of at least `MIN_REASON_LENGTH` characters.
2. A confirmation computed from the real state of each organisation: the balance before
   and after, and what would follow (running servers hibernated, auto top-up charging
   which card how much, low-balance and runway warnings, resumption). It carries a
   signed token (15 minutes, bound to the staff user, the organisations, the amount and
   the kind) whose nonce is the ledger reference, so a double submit posts once.

The rules themselves live in the services (`credit_adjust` refuses finer precision and
amounts above the limit for non-superusers whatever the caller); this module only asks,
shows and confirms.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.admin import helpers
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from accounts.models import BillingMode, Organization, User
from core.errors import DomainError
from core.money import format_money, minor_unit_exponent, round_money
from credits import services
from credits.models import Balance
from credits.runway import crossed_keys, warning_text
from credits.services.auto_topup import auto_topup_outlook
from credits.services.ledger import adjustment_staff_limit
from credits.topup_contract import handler_charged_method

MIN_REASON_LENGTH = 12
TOKEN_SALT = "credits.console-adjustment"
TOKEN_MAX_AGE = 15 * 60  # seconds a confirmation stays valid

REASON_CATEGORIES = [
    ("service_credit", "Service credit (outage, SLA)"),
    ("billing_error", "Correction of a billing error"),
    ("goodwill", "Goodwill"),
    ("migration", "Balance migration"),
    ("abuse", "Fraud or abuse recovery"),
    ("other", "Other"),
]


class AdjustmentForm(forms.Form):
    """Step 1. `user` and `organizations` decide the precision and the staff limit."""

    amount = forms.DecimalField(
        max_digits=20,
        decimal_places=6,
        help_text="Positive credits the customer, negative debits paid credit.",
    )
    category = forms.ChoiceField(choices=REASON_CATEGORIES, label="Reason category")
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        min_length=MIN_REASON_LENGTH,
        max_length=1900,
        help_text=f"What happened and the ticket, at least {MIN_REASON_LENGTH} characters.",
    )
    promotional = forms.BooleanField(
        required=False, help_text="Grant as promotional credit (positive amounts only)."
    )
    expires_at = forms.DateTimeField(
        required=False, help_text="Promotional credit: when what is left expires (UTC)."
    )

    def __init__(self, *args: Any, user: Any, organizations: list[Organization], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.organizations = organizations

    def clean_amount(self) -> Decimal:
        amount: Decimal = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("Enter an amount other than zero.")
        for currency in sorted({org.currency for org in self.organizations}):
            if round_money(amount, currency) != amount:
                raise forms.ValidationError(
                    f"{currency} amounts have at most {minor_unit_exponent(currency)} decimal places."
                )
            limit = adjustment_staff_limit(currency)
            if abs(amount) > limit and not self.user.is_superuser:
                raise forms.ValidationError(
                    f"Above the staff limit of {format_money(limit, currency)}: a superuser must post this."
                )
        return amount

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("promotional"):
            if not data.get("expires_at"):
                self.add_error("expires_at", "Promotional credit needs an expiry.")
            if data.get("amount") is not None and data["amount"] <= 0:
                self.add_error("amount", "Promotional credit must be positive.")
        return data

    @property
    def full_reason(self) -> str:
        label = dict(REASON_CATEGORIES)[self.cleaned_data["category"]]
        return f"{label}: {self.cleaned_data['reason'].strip()}"


@dataclass
class Outlook:
    """Step 2, per organisation: the balance before and after and what would follow."""

    organization: Organization
    currency: str
    before: Decimal
    after: Decimal
    consequences: list[str] = field(default_factory=list)

    @property
    def before_display(self) -> str:
        return format_money(self.before, self.currency)

    @property
    def after_display(self) -> str:
        return format_money(self.after, self.currency)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def outlook(organization: Organization, amount: Decimal) -> Outlook:
    """What posting `amount` would do now, read from the real state (no locks, no writes)."""
    from credits.hibernation import _running_resources

    currency = organization.currency
    balance = Balance.objects.filter(organization=organization, currency=currency).first() or Balance(
        organization=organization, currency=currency
    )
    before, after = balance.amount, balance.amount + amount
    view = Outlook(organization, currency, before, after)
    prepaid = organization.billing_mode == BillingMode.PREPAID
    if amount < 0:
        if prepaid and balance.hibernated_at is None and after <= -settings.CREDITS_HIBERNATE_GRACE_AMOUNT:
            running = _running_resources(organization.pk).count()
            if running:
                grace = settings.CREDITS_HIBERNATE_GRACE_PERIOD
                when = (
                    f" after the grace period of {int(grace.total_seconds() // 60)} minutes" if grace else ""
                )
                view.consequences.append(f"{_plural(running, 'running server')} will be hibernated{when}.")
        topup = auto_topup_outlook(
            organization_id=organization.pk, currency=currency, balance_before=before, balance_after=after
        )
        if topup is not None and topup["capped"]:
            view.consequences.append("Auto top-up will be skipped: this month's cap is reached.")
        elif topup is not None:
            method = handler_charged_method(settings.CREDITS_AUTO_TOPUP_HANDLER, organization)
            lifted = after + topup["amount"]
            still = (
                f" The balance stays below the threshold of {format_money(topup['threshold'], currency)} "
                f"({format_money(lifted, currency)})."
                if lifted < topup["threshold"]
                else ""
            )
            view.consequences.append(
                f"Auto top-up will charge {format_money(topup['amount'], currency)} to {method}.{still}"
            )
        # As runway.send_warnings: one message per crossing, the most severe new key speaks.
        new = [
            k
            for k in crossed_keys(after, balance.burn_rate_per_hour)
            if k not in (balance.warnings_sent or [])
        ]
        if new:
            text = warning_text(new[0], after, currency, balance.burn_rate_per_hour)
            view.consequences.append(f"A warning will be emailed: “{text}”")
    elif balance.hibernated_at is not None and after > 0:
        count = len(balance.hibernated_resources or [])
        if settings.CREDITS_RESUME_MODE == "automatic":
            view.consequences.append(f"{_plural(count, 'hibernated server')} will be resumed.")
        else:
            view.consequences.append(
                f"{_plural(count, 'hibernated server')} can then be resumed (Resume action)."
            )
    if not view.consequences:
        view.consequences.append("Nothing else follows.")
    return view


def _token(request: HttpRequest, organizations: list[Organization], data: dict[str, Any]) -> str:
    return signing.dumps(
        {
            "u": request.user.pk,
            "o": sorted(org.pk for org in organizations),
            "a": str(data["amount"]),
            "p": bool(data["promotional"]),
            "n": secrets.token_hex(12),
        },
        salt=TOKEN_SALT,
    )


def _nonce(request: HttpRequest, organizations: list[Organization], data: dict[str, Any]) -> str:
    """The confirmed token's nonce, or DomainError when it is stale, forged or for other input."""
    try:
        claims = signing.loads(request.POST.get("token", ""), salt=TOKEN_SALT, max_age=TOKEN_MAX_AGE)
    except signing.SignatureExpired:
        raise DomainError("The confirmation expired (15 minutes): review the adjustment again.")
    except signing.BadSignature:
        raise DomainError("The confirmation is not valid: review the adjustment again.")
    expected = {
        "u": request.user.pk,
        "o": sorted(org.pk for org in organizations),
        "a": str(data["amount"]),
        "p": bool(data["promotional"]),
    }
    if {k: claims.get(k) for k in expected} != expected:
        raise DomainError("The confirmation was for another adjustment: review it again.")
    return str(claims["n"])


def _post(
    modeladmin: Any, request: HttpRequest, organizations: list[Organization], form: AdjustmentForm, nonce: str
) -> int:
    data, done = form.cleaned_data, 0
    staff = cast(User, request.user)  # the admin lets only signed-in staff this far
    for org in organizations:
        reference = f"console-adjustment:{nonce}"
        try:
            if data["promotional"]:
                # Grants have no caller reference: the nonce is claimed once per organisation.
                if not cache.add(f"{reference}:{org.pk}", 1, TOKEN_MAX_AGE):
                    continue
                services.promo_grant(
                    organization=org,
                    amount=data["amount"],
                    reason=form.full_reason,
                    expires_at=data["expires_at"],
                    actor=staff,
                )
            else:
                services.credit_adjust(
                    organization=org,
                    amount=data["amount"],
                    reason=form.full_reason,
                    reference=reference,
                    actor=staff,
                )
            done += 1
        except DomainError as exc:
            modeladmin.message_user(request, f"{org}: {exc.message}", messages.ERROR)
    return done


def _current_balance(organization: Organization) -> str:
    amount = (
        Balance.objects.filter(organization=organization, currency=organization.currency)
        .values_list("amount", flat=True)
        .first()
    )
    return format_money(amount if amount is not None else Decimal("0"), organization.currency)


def adjust(
    modeladmin: Any, request: HttpRequest, organizations: list[Organization], back_to_action: str
) -> HttpResponse | None:
    """The admin action's body (organisation and balance changelists)."""
    step = request.POST.get("step", "")
    form = AdjustmentForm(request.POST if step else None, user=request.user, organizations=organizations)
    context: dict[str, Any] = {
        **modeladmin.admin_site.each_context(request),
        "title": "Adjust credit",
        "form": form,
        "organizations": organizations,
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "action": back_to_action,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "opts": modeladmin.model._meta,
        "step": "review",
        "current": [(org, _current_balance(org)) for org in organizations],
    }
    if step and form.is_valid():
        data = form.cleaned_data
        if step == "confirm":
            try:
                nonce = _nonce(request, organizations, data)
            except DomainError as exc:
                modeladmin.message_user(request, exc.message, messages.ERROR)
            else:
                done = _post(modeladmin, request, organizations, form, nonce)
                modeladmin.message_user(
                    request, f"Adjusted the credit of {done} organisation(s).", messages.SUCCESS
                )
                return None
        context.update(
            step="confirm",
            outlooks=[outlook(org, data["amount"]) for org in organizations],
            token=_token(request, organizations, data),
            hidden_form=form,
        )
    return TemplateResponse(request, "credits/admin/adjust.html", context)
