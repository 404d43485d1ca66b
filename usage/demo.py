"""Demo fleet for `make run`: servers for the demo organisations with six days of
history (starts, stops, a hibernation, a resize, an add-on), metered up to now so the
Usage page, the dashboard and credits show real numbers. Idempotent: resources that
exist are left alone; metering from the watermarks adds only what is new."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.models import Organization
from pricing.models import Product, ResourceState
from usage import metering, rollups, services
from usage.models import Aggregation, Metric, Resource, StateSource, UsageEvent, to_minute

R, S, H = ResourceState.RUNNING, ResourceState.STOPPED, ResourceState.HIBERNATED
# In a history, "since the start of last month" (a calendar month, whenever the demo is
# seeded): the IPv4 addresses, monthly fees held all of last month, so last month's
# invoices (invoices.demo) carry fee lines and the recurring report's MRR goes on from
# finance.demo's history months instead of churning to zero.
LAST_MONTH = "last-month"
# org slug: [(external id, name, product, [(hours ago, state or product code)], add-ons)]
FLEET = {
    "acme-ai": [
        ("acme-h100-01", "training-h100-01", "gpu-h100-8x", [(140, R)], ["addon-backup"]),
        ("acme-a100-02", "finetune-a100", "gpu-a100-1x", [(130, R), (80, H), (30, R)], []),
        ("acme-cpu-web", "web-frontend", "cpu-4-16", [(143, R), (60, "cpu-16-64")], ["addon-dedicated-ip"]),
        ("acme-cpu-ci", "ci-runner", "cpu-2-4", [(120, R), (20, S)], []),
        # Measured vs billable has something to say: a bastion running since the start of
        # last month reaches its product's monthly cap ($19.99 < 720 h × $0.0298), and a
        # three-minute A100 test run pays its product's ten-minute minimum.
        ("acme-cpu-bastion", "bastion", "cpu-2-4", [(LAST_MONTH, R)], []),
        ("acme-a100-try", "quick-test-a100", "gpu-a100-1x", [(30, R), (timedelta(hours=29, minutes=57), S)], []),
        ("acme-ipv4-1", "ipv4-gateway-1", "ipv4", [(LAST_MONTH, R)], []),
        ("acme-ipv4-2", "ipv4-gateway-2", "ipv4", [(LAST_MONTH, R)], []),
    ],
    "nordlicht": [
        ("nl-render-01", "render-a100-node", "gpu-a100-8x", [(110, R)], ["addon-ssd-upgrade"]),
        ("nl-l40s-01", "preview-l40s", "gpu-l40s-1x", [(100, R), (48, S), (24, R)], []),
        ("nl-ipv4-1", "ipv4-render", "ipv4", [(LAST_MONTH, R)], []),
    ],
    # Unchanged since before its $90.00 ran out (about three days ago at $1.22 an hour):
    # credits.demo.seed_ladder hibernates it at that minute.
    "tinyml": [
        ("tiny-cpu-01", "notebook", "cpu-4-16", [(160, R)], []),
        ("tiny-l40s-01", "inference-l40s", "gpu-l40s-1x", [(150, R)], []),
    ],
}


def seed(stdout=None) -> None:
    now = timezone.now().replace(second=0, microsecond=0)
    products = {p.code: p for p in Product.objects.all()}
    if not products:
        return
    bandwidth = products.get("bandwidth-egress")
    if bandwidth is not None:
        Metric.objects.get_or_create(code="bandwidth_gb", defaults={
            "name": "Outbound bandwidth", "unit": "GB", "aggregation": Aggregation.SUM, "product": bandwidth})
    created = 0
    for slug, fleet in FLEET.items():
        org = Organization.objects.filter(slug=slug).first()
        if org is None:
            continue
        for external_id, name, code, history, addons in fleet:
            if Resource.objects.filter(external_id=external_id).exists():
                continue
            _build(org, external_id, name, products[code], _offsets(history, now), [products[a] for a in addons],
                   products, now)
            created += 1
    _projects()
    # The history written, before it is metered (credits' demo: TinyML hibernated at the
    # minute its credit ran out, metering up to there first).
    for hook in settings.USAGE_DEMO_BEFORE_METERING:
        import_string(hook)(stdout=stdout)
    result = metering.meter_pass()
    rollups.rollup_pending()
    if stdout:
        stdout.write(f"usage: {created} new resources, {result.rows} rated rows")


# org slug: [(project slug, name, [(external id, labels)])]: the Projects page, the spend
# explorer's Project and Label groupings and the invoices' project headings have content.
PROJECTS = {
    "acme-ai": [
        ("ml-research", "ML research", [("acme-h100-01", {"team": "research", "env": "prod"}),
                                        ("acme-a100-02", {"team": "research", "env": "dev"})]),
        ("platform", "Platform", [("acme-cpu-web", {"team": "web", "env": "prod"}),
                                  ("acme-cpu-ci", {"team": "web", "env": "ci"})]),
    ],
}


def _projects() -> None:
    """Projects and labels on the demo fleet, set once (a resource that has a project or
    labels already is left as it is)."""
    from usage.models import Project

    for slug, projects in PROJECTS.items():
        org = Organization.objects.filter(slug=slug).first()
        if org is None:
            continue
        for project_slug, name, members in projects:
            project, _ = Project.objects.get_or_create(organization=org, slug=project_slug, defaults={"name": name})
            for external_id, labels in members:
                Resource.objects.filter(organization=org, external_id=external_id, project__isnull=True,
                                        labels={}).update(project=project, labels=labels, tags_at=timezone.now())


def _offsets(history, now):
    """The history with each offset as a timedelta before `now` (hours, a timedelta, or
    LAST_MONTH: since the start of last month)."""
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = (first - timedelta(days=1)).replace(day=1)

    def offset(ago):
        if ago == LAST_MONTH:
            return now - last_month
        return ago if isinstance(ago, timedelta) else timedelta(hours=ago)

    return [(offset(ago), change) for ago, change in history]


@transaction.atomic
def _build(org, external_id, name, product, history, addons, products, now) -> None:
    born = now - history[0][0] - timedelta(minutes=7)
    resource = Resource.objects.create(organization=org, external_id=external_id, name=name, product=product,
                                       state=ResourceState.PROVISIONING, state_since=born)
    points = [services.ChangePoint(resource_id=resource.pk, organization_id=org.pk, at=born,
                                   state=ResourceState.PROVISIONING, product_id=product.pk,
                                   current_product_id=product.pk, source=StateSource.EVENT)]
    for ago, change in history:
        at = now - ago
        if change in products:
            points.append(services.ChangePoint(resource_id=resource.pk, organization_id=org.pk, at=at,
                                               product_id=products[change].pk, current_product_id=product.pk))
        else:
            points.append(services.ChangePoint(resource_id=resource.pk, organization_id=org.pk, at=at, state=change,
                                               current_product_id=product.pk))
    services.lock_resources([resource.pk])
    # History older than the events API accepts: written as change points directly.
    services.record_change_points(points)
    for addon in addons:
        services.addon_attach_points(resource_id=resource.pk, organization_id=org.pk, product_id=addon.pk,
                                     at=now - history[0][0] + timedelta(hours=1))
    if product.billing_model != "monthly" and Metric.objects.filter(code="bandwidth_gb").exists():
        UsageEvent.objects.bulk_create([
            UsageEvent(event_id=f"demo-{external_id}-bw-{h}", type="metered", organization=org, resource=resource,
                       occurred_at=now - timedelta(hours=h), minute=to_minute(now - timedelta(hours=h)),
                       received_at=now, metric="bandwidth_gb", quantity=Decimal(17 + (h * 7) % 23))
            for h in range(1, int(history[0][0] / timedelta(hours=1)), 6)
        ], ignore_conflicts=True)
