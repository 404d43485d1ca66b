"""Sandbox provisioning, for the demo and development only (USAGE_SANDBOX_PROVISIONING).

In production, servers are started and stopped by the cloud platform, which reports them
through the events API; the billing portal never starts anything. In the `make run`
demo there is no platform, so this panel on the Usage page stands in for it: it records
exactly what a platform's `resource.started` / `resource.stopped` events would, through
the same services, so metering, credits and invoices see a real server run."""

from __future__ import annotations

import secrets

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.utils.module_loading import import_string
from django.views.decorators.http import require_POST

from accounts.portal import portal_view
from pricing.models import Product, ProductKind, ResourceState
from usage import services
from usage.models import Resource, StateSource

SANDBOX_PREFIX = "sbx-"


def enabled() -> bool:
    return bool(getattr(settings, "USAGE_SANDBOX_PROVISIONING", False))


def server_products():
    return Product.objects.filter(kind=ProductKind.SERVER, is_active=True).order_by("position", "name")


class StartServerForm(forms.Form):
    product = forms.ModelChoiceField(queryset=Product.objects.none(), empty_label=None, label="Flavour")
    name = forms.SlugField(max_length=60, initial="sandbox-server", label="Name")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["product"].queryset = server_products()


def _require_enabled() -> None:
    if not enabled():
        raise Http404("Sandbox provisioning is off.")


@require_POST
@portal_view("account:write")
def start(request):
    _require_enabled()
    org = request.membership.organization
    form = StartServerForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{field}: {' '.join(errors)}")
        return redirect("usage:index")
    # A platform asks runway admission before it starts anything; the sandbox does too.
    decision = import_string(settings.USAGE_ADMISSION)(organization=org, product=form.cleaned_data["product"])
    if not decision.allowed:
        messages.error(request, f"Not started ({decision.reason.replace('_', ' ')}): {decision.message}")
        return redirect("usage:index")
    resource = services.resource_create(
        organization=org, external_id=f"{SANDBOX_PREFIX}{org.slug}-{secrets.token_hex(4)}",
        product=form.cleaned_data["product"], name=form.cleaned_data["name"], at=timezone.now(),
        state=ResourceState.RUNNING, source=StateSource.EVENT, actor=request.user,
    )
    messages.success(request, f"Sandbox server {resource.name} is running; metering charges it from this minute. "
                              f"{decision.message}")
    return redirect("usage:index")


@portal_view("account:write", model=Resource)
@require_POST
def stop(request, pk: int):
    _require_enabled()
    org = request.membership.organization
    resource = get_object_or_404(Resource, pk=pk, organization=org, external_id__startswith=SANDBOX_PREFIX,
                                 deleted_at__isnull=True)
    if resource.state != ResourceState.STOPPED:
        services.resource_change_state(resource=resource, state=ResourceState.STOPPED, at=timezone.now(),
                                       source=StateSource.EVENT, reason="Stopped in the sandbox panel",
                                       actor=request.user)
        messages.success(request, f"Sandbox server {resource.name} stopped.")
    return redirect("usage:index")
