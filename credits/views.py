"""Portal pages: the Credits page (balance, ledger, top-up, auto top-up, events; for a
postpaid organisation its credit limit, usage to date and open invoices instead).

Buying credit is not here: the one top-up flow is `settings.CREDITS_TOPUP_PAGE`
(payments' page: amount, how to pay, a confirmation naming the saved card). The Credits
page's top-up card starts it with the same form class, `credits.forms.TopUpForm`."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.portal import portal_view
from accounts.scopes import ROLE_SCOPES
from core.csv_export import csv_download, datetime_cell, exact_cell, money_cell
from core.errors import DomainError
from core.forms import errors_text
from credits import hibernation, services
from credits.forms import AutoTopUpForm, LedgerFilterForm, TopUpForm
from credits.models import CreditEvent, TopUp
from credits.selectors import credit_summary, ledger_for
from credits.topup_contract import handler_is_sandboxed
from usage.selectors import month_to_date_for_request

LEDGER_PAGE_SIZE = 25
LEDGER_CSV_HEADER = ["created_at_utc", "kind", "reason", "reference", "by", "currency", "amount", "amount_exact",
                     "promo_amount_exact", "balance_after", "balance_after_exact"]


def _plain(amount):
    """200.000000000000 → '200.00' for a form field (the stored value is exact)."""
    return None if amount is None else f"{amount:.2f}"


def _can_write(request) -> bool:
    return "billing:write" in ROLE_SCOPES[request.membership.role]


@portal_view("billing:read")
def index(request):
    return _index(request)


def _index(request, *, auto_form: AutoTopUpForm | None = None, status: int = 200):
    """The Credits page; `auto_form` bound to a refused post shows its errors on its fields
    with what was typed."""
    org = request.membership.organization
    summary = credit_summary(organization=org)
    filters = LedgerFilterForm(_ledger_filters(request))
    entries = ledger_for(organization=org)
    if filters.is_valid():
        entries = filters.filter(entries)
    else:
        entries = entries.none()  # the form shows what is wrong; nothing is shown as if it were the answer
    page = Paginator(entries, LEDGER_PAGE_SIZE).get_page(request.GET.get("page"))
    cfg = summary.auto_topup
    if auto_form is None:
        auto_form = AutoTopUpForm(currency=org.currency, disabled=not _can_write(request), initial={
            "enabled": cfg.enabled if cfg else False,
            **{name: _plain(getattr(cfg, name) if cfg else None) for name in ("threshold", "amount", "monthly_cap")},
        })
    from credits import ladder

    return render(request, "credits/index.html", {
        "summary": summary,
        "ladder": ladder.current(organization=org) if summary.hibernated else None,
        "mtd": None if summary.prepaid else month_to_date_for_request(request, org),
        "page": page,
        "filters": filters,
        "ledger_query": urlencode({k: v for k, v in _ledger_filters(request).items() if v}),
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
    }, status=status)


def _ledger_filters(request) -> dict[str, str]:
    return {name: request.GET.get(name, "") for name in ("kind", "start", "end")}


@portal_view("billing:read")
@require_GET
def ledger_csv(request):
    """The ledger as CSV, with the page's filters. Amounts as money at the currency's
    places, and exactly as recorded (12 places) in the `_exact` columns."""
    org = request.membership.organization
    filters = LedgerFilterForm(_ledger_filters(request))
    if not filters.is_valid():
        return HttpResponseBadRequest(errors_text(filters), content_type="text/plain; charset=utf-8")
    entries = filters.filter(ledger_for(organization=org))
    rows = ([datetime_cell(e.created_at), e.kind, e.reason, e.reference, e.actor_display, e.currency,
             money_cell(e.amount, e.currency), exact_cell(e.amount), exact_cell(e.promo_amount),
             money_cell(e.balance_after, e.currency), exact_cell(e.balance_after)]
            for e in entries.iterator(chunk_size=2000))
    return csv_download(f"ledger-{org.slug}.csv", LEDGER_CSV_HEADER, rows)


@portal_view("billing:write")
@require_POST
def auto_topup(request):
    org = request.membership.organization
    form = AutoTopUpForm(request.POST, currency=org.currency)
    if form.is_valid():
        try:
            services.auto_topup_configure(organization=org, actor=request.user, **form.cleaned_data)
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, "Auto top-up saved.")
            return redirect("credits:index")
    return _index(request, auto_form=form, status=400)


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
