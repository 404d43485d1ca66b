"""Portal pages for an organisation's webhook endpoints (owners and admins:
`webhooks:write`): the list and the form to add one, an endpoint's page with its secret
(shown once), the delivery log, rotation, the test event and replays, and a delivery's
attempts. Platform-wide endpoints live in the console."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.portal import portal_view
from core.errors import DomainError
from webhooks import services
from webhooks.catalogue import EVENT_TYPES
from webhooks.forms import EndpointForm, ReplayForm
from webhooks.models import DeliveryStatus, EndpointStatus, WebhookDelivery, WebhookEndpoint

SCOPE = "webhooks:write"
LOG_PAGE = 50


def _endpoint(request, pk: int) -> WebhookEndpoint:
    return get_object_or_404(WebhookEndpoint, pk=pk, organization=request.membership.organization)


def _show_secret_once(request, endpoint: WebhookEndpoint) -> None:
    request.session["new_webhook_secret"] = {"id": endpoint.pk, "secret": endpoint.secret}


def _form_error(form, exc: DomainError) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


@portal_view(SCOPE)
def index(request):
    org = request.membership.organization
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint = services.endpoint_create(
                organization=org, url=form.cleaned_data["url"], event_types=form.cleaned_data["event_types"],
                description=form.cleaned_data["description"], actor=request.user)
        except DomainError as exc:
            _form_error(form, exc)
        else:
            _show_secret_once(request, endpoint)
            return redirect("webhooks:endpoint", pk=endpoint.pk)
    endpoints = WebhookEndpoint.objects.filter(organization=org).order_by("id")
    return render(request, "webhooks/index.html", {"endpoints": endpoints, "form": form,
                                                   "catalogue": EVENT_TYPES.values()})


@portal_view(SCOPE, model=WebhookEndpoint)
def endpoint(request, pk: int):
    ep = _endpoint(request, pk)
    form = EndpointForm(request.POST or None, initial={"url": ep.url, "description": ep.description,
                                                       "event_types": ep.event_types})
    if request.method == "POST" and form.is_valid():
        try:
            services.endpoint_update(endpoint=ep, url=form.cleaned_data["url"],
                                     event_types=form.cleaned_data["event_types"],
                                     description=form.cleaned_data["description"], actor=request.user)
        except DomainError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, "Endpoint saved.")
            return redirect("webhooks:endpoint", pk=ep.pk)
    secret = request.session.pop("new_webhook_secret", None)
    if secret and secret.get("id") != ep.pk:
        secret = None
    deliveries = Paginator(ep.deliveries.select_related("message").order_by("-id"), LOG_PAGE)
    page = deliveries.get_page(request.GET.get("page"))
    return render(request, "webhooks/endpoint.html", {
        "endpoint": ep, "form": form, "new_secret": secret, "page": page, "replay_form": ReplayForm(),
        "enabled": ep.status == EndpointStatus.ENABLED,
    })


@portal_view(SCOPE, model=WebhookEndpoint)
@require_POST
def rotate(request, pk: int):
    ep = services.endpoint_rotate_secret(endpoint=_endpoint(request, pk), actor=request.user)
    _show_secret_once(request, ep)
    messages.success(request, "New secret made. The old one keeps signing beside it for 24 hours.")
    return redirect("webhooks:endpoint", pk=ep.pk)


@portal_view(SCOPE, model=WebhookEndpoint)
@require_POST
def send_test(request, pk: int):
    ep = _endpoint(request, pk)
    try:
        delivery = services.endpoint_send_test(endpoint=ep, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Test event {delivery.message.public_id} sent.")
    return redirect("webhooks:endpoint", pk=ep.pk)


@portal_view(SCOPE, model=WebhookEndpoint)
@require_POST
def replay(request, pk: int):
    ep = _endpoint(request, pk)
    form = ReplayForm(request.POST)
    if not form.is_valid() or not form.cleaned_data.get("start"):
        errors = "; ".join(e for errs in form.errors.values() for e in errs) if form.errors else "Choose a From date."
        messages.error(request, f"Nothing replayed: {errors}")
        return redirect("webhooks:endpoint", pk=ep.pk)
    since, until = form.utc_bounds()
    try:
        count = services.deliveries_replay(endpoint=ep, since=since, until=until, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{count} deliver{'y' if count == 1 else 'ies'} sent again.")
    return redirect("webhooks:endpoint", pk=ep.pk)


@portal_view(SCOPE, model=WebhookEndpoint)
@require_POST
def toggle(request, pk: int):
    ep = _endpoint(request, pk)
    enable = ep.status != EndpointStatus.ENABLED
    services.endpoint_update(endpoint=ep, enabled=enable, actor=request.user)
    messages.success(request, "Endpoint enabled: what waited is being sent." if enable else "Endpoint disabled.")
    return redirect("webhooks:endpoint", pk=ep.pk)


@portal_view(SCOPE, model=WebhookEndpoint)
@require_POST
def delete(request, pk: int):
    ep = _endpoint(request, pk)
    services.endpoint_delete(endpoint=ep, actor=request.user)
    messages.success(request, f"Endpoint {ep.url} deleted.")
    return redirect("webhooks:index")


def _delivery(request, pk: int) -> WebhookDelivery:
    return get_object_or_404(WebhookDelivery.objects.select_related("message", "endpoint"), pk=pk,
                             endpoint__organization=request.membership.organization)


@portal_view(SCOPE, model=WebhookDelivery)
@require_GET
def delivery(request, pk: int):
    d = _delivery(request, pk)
    return render(request, "webhooks/delivery.html", {
        "delivery": d, "attempts": d.attempt_log.order_by("-id")[:50],
        "can_replay": d.status != DeliveryStatus.PENDING and d.endpoint.status == EndpointStatus.ENABLED,
    })


@portal_view(SCOPE, model=WebhookDelivery)
@require_POST
def delivery_replay(request, pk: int):
    d = _delivery(request, pk)
    try:
        services.deliveries_replay(endpoint=d.endpoint, delivery_ids=[d.pk], actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Sent again, with the same webhook-id.")
    return redirect("webhooks:delivery", pk=d.pk)
