"""Portal: the Budgets page (everyone holding billing:read sees it; billing:write, i.e.
owners, admins and billing, create, edit and delete)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.portal import portal_view
from accounts.scopes import ROLE_SCOPES
from budgets import services
from budgets.forms import BudgetForm
from budgets.models import Budget, BudgetAlert
from core.errors import DomainError

WRITE = "billing:write"


def _can_write(request) -> bool:
    return WRITE in ROLE_SCOPES[request.membership.role]


def _require_write(request) -> None:
    if request.method == "POST" and not _can_write(request):
        raise PermissionDenied("Your role does not allow changing budgets.")


def _save(request, form: BudgetForm, budget: Budget | None):
    org = request.membership.organization
    if not form.is_valid():
        return None
    try:
        if budget is None:
            return services.budget_create(organization=org, actor=request.user, **form.cleaned_data)
        return services.budget_update(budget=budget, actor=request.user, **form.cleaned_data)
    except DomainError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return None


@portal_view("billing:read")
def index(request):
    _require_write(request)
    org = request.membership.organization
    from usage.models import Project

    form = BudgetForm(request.POST or None, projects=Project.objects.filter(organization=org).order_by("name", "id"))
    if request.method == "POST":
        budget = _save(request, form, None)
        if budget is not None:
            messages.success(request, f"Budget \u201c{budget.name}\u201d created.")
            return redirect("budgets:index")
    budgets = list(Budget.objects.filter(organization=org).select_related("project").order_by("id"))
    alerts = BudgetAlert.objects.filter(organization=org).select_related("budget__project")[:20]
    return render(request, "budgets/index.html", {"budgets": budgets, "form": form, "alerts": alerts,
                                                  "can_write": _can_write(request), "currency": org.currency},
                  status=400 if request.method == "POST" else 200)


@portal_view("billing:read", model=Budget)
def detail(request, pk: int):
    _require_write(request)
    budget = get_object_or_404(Budget.objects.select_related("project"), pk=pk,
                               organization=request.membership.organization)
    form = BudgetForm(request.POST or None, initial=BudgetForm.initial_for(budget))
    if request.method == "POST":
        saved = _save(request, form, budget)
        if saved is not None:
            messages.success(request, "Budget saved.")
            return redirect("budgets:detail", pk=budget.pk)
    return render(request, "budgets/detail.html", {"budget": budget, "form": form, "can_write": _can_write(request),
                                                   "alerts": budget.alerts.all()[:50]},
                  status=400 if request.method == "POST" else 200)


@portal_view(WRITE, model=Budget)
@require_POST
def delete(request, pk: int):
    budget = get_object_or_404(Budget, pk=pk, organization=request.membership.organization)
    services.budget_delete(budget=budget, actor=request.user)
    messages.success(request, f"Budget \u201c{budget.name}\u201d deleted.")
    return redirect("budgets:index")
