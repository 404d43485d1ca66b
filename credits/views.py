"""Portal pages: the Credits page (balance, ledger, top-up, auto top-up, events; for a
postpaid organisation its credit limit, usage to date and open invoices instead).

Buying credit is not here: the one top-up flow is `settings.CREDITS_TOPUP_PAGE`
(payments' page: amount, how to pay, a confirmation naming the saved card). The Credits
page's top-up card starts it with the same form class, `credits.forms.TopUpForm`."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.portal import portal_view
from accounts.scopes import ROLE_SCOPES
from core.errors import DomainError
from credits import hibernation, services
from credits.forms import AutoTopUpForm, LedgerFilterForm, TopUpForm
from credits.models import CreditEvent, TopUp
from credits.selectors import credit_summary, ledger_for
from credits.topup_contract import handler_is_sandboxed
from usage.selectors import month_to_date_for_request

LEDGER_PAGE_SIZE = 25


def _plain(amount):
    """200.000000000000 → '200.00' for a form field (the stored value is exact)."""
    return None if amount is None else f"{amount:.2f}"


def _can_write(request) -> bool:
    return "billing:write" in ROLE_SCOPES[request.membership.role]


@portal_view("billing:read")
def index(request):
    org = request.membership.organization
    summary = credit_summary(organization=org)
    filters = LedgerFilterForm(request.GET or None)
    entries = ledger_for(organization=org)
    if filters.is_valid() and filters.cleaned_data["kind"]:
        entries = entries.filter(kind=filters.cleaned_data["kind"])
    page = Paginator(entries, LEDGER_PAGE_SIZE).get_page(request.GET.get("page"))
    cfg = summary.auto_topup
    auto_form = AutoTopUpForm(initial={
        "enabled": cfg.enabled if cfg else False,
        **{name: _plain(getattr(cfg, name) if cfg else None) for name in ("threshold", "amount", "monthly_cap")},
    })
    return render(request, "credits/index.html", {
        "summary": summary,
        "mtd": None if summary.prepaid else month_to_date_for_request(request, org),
        "page": page,
        "filters": filters,
        "topup_page": settings.CREDITS_TOPUP_PAGE,
        # The top-up form's amount, sent to the top-up page, which asks how to pay.
        "topup_form": TopUpForm(currency=org.currency, pay_with=[], auto_id="topup_%s"),
        "presets": settings.CREDITS_TOPUP_PRESETS,
        "auto_form": auto_form,
        "can_write": _can_write(request),
        "topups": TopUp.objects.filter(organization=org)[:5],
        "events": CreditEvent.objects.filter(organization=org)[:10],
        "manual_resume": summary.hibernated and settings.CREDITS_RESUME_MODE == "manual",
        "sandbox": handler_is_sandboxed(settings.CREDITS_TOPUP_HANDLER),
    })


@portal_view("billing:write")
@require_POST
def auto_topup(request):
    form = AutoTopUpForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{field}: {errors[0]}")
        return redirect("credits:index")
    try:
        services.auto_topup_configure(organization=request.membership.organization, actor=request.user,
                                      **form.cleaned_data)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Auto top-up saved.")
    return redirect("credits:index")


@portal_view("billing:write")
@require_POST
def resume(request):
    if not _can_write(request):
        raise PermissionDenied
    try:
        hibernation.resume(organization_id=request.membership.organization_id, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Your resources are resuming.")
    return redirect("credits:index")
