"""The demo price book: GPU and CPU flavours, storage, bandwidth, IPv4 and add-ons in USD
and EUR, one price change in the past, and a contract for Nordlicht Render.

Idempotent: products are created once, prices only for products that have none, the
contract only if Nordlicht has none. History is loaded with `now=` set to when each
change was made, through the same services staff use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from django.utils import timezone

from accounts.models import Organization
from pricing import services
from pricing.models import Contract, Price, Product, ProductGroup
from pricing.proration import month_start
from pricing.quantity_pricing import Tier
from pricing.services import OverrideSpec, PriceSpec

GROUPS = [
    ("gpu", "GPU servers", "NVIDIA H100, A100 and L40S machines, billed by the minute."),
    ("cpu", "CPU servers", "General-purpose virtual machines; a month never costs more than its cap."),
    ("storage", "Storage", "Block and archive storage, prorated by the minute."),
    ("network", "Network", "Bandwidth and IP addresses."),
    ("addons", "Add-ons", "Extras attached to a server, billed like the server."),
]

# code, name, group, kind, billing model, attributes
PRODUCTS = [
    ("gpu-h100-8x", "H100 SXM × 8", "gpu", "server", "hourly",
     dict(vcpus=208, ram_gb=1800, gpu_model="NVIDIA H100 SXM 80GB", gpu_count=8, local_disk_gb=30720)),
    ("gpu-a100-8x", "A100 × 8 node", "gpu", "server", "hourly",
     dict(vcpus=124, ram_gb=1000, gpu_model="NVIDIA A100 80GB", gpu_count=8, local_disk_gb=15360)),
    ("gpu-a100-1x", "A100 × 1", "gpu", "server", "hourly",
     dict(vcpus=30, ram_gb=200, gpu_model="NVIDIA A100 80GB", gpu_count=1, local_disk_gb=1920)),
    ("gpu-l40s-1x", "L40S × 1", "gpu", "server", "hourly",
     dict(vcpus=16, ram_gb=128, gpu_model="NVIDIA L40S 48GB", gpu_count=1, local_disk_gb=960)),
    ("cpu-2-4", "CPU 2 vCPU / 4 GB", "cpu", "server", "hourly", dict(vcpus=2, ram_gb=4, local_disk_gb=80)),
    ("cpu-4-16", "CPU 4 vCPU / 16 GB", "cpu", "server", "hourly", dict(vcpus=4, ram_gb=16, local_disk_gb=160)),
    ("cpu-16-64", "CPU 16 vCPU / 64 GB", "cpu", "server", "hourly", dict(vcpus=16, ram_gb=64, local_disk_gb=640)),
    ("block-storage-ssd", "Block storage (SSD)", "storage", "storage", "monthly", dict(unit_label="GB")),
    ("archive-storage", "Archive storage", "storage", "storage", "monthly", dict(unit_label="GB")),
    ("bandwidth-egress", "Outbound bandwidth", "network", "bandwidth", "overage", dict(unit_label="GB")),
    ("ipv4", "IPv4 address", "network", "ip_address", "monthly", dict(unit_label="address")),
    ("addon-ssd-upgrade", "NVMe SSD upgrade", "addons", "addon", "addon", {}),
    ("addon-dedicated-ip", "Dedicated IP", "addons", "addon", "addon", {}),
    ("addon-backup", "Daily backup", "addons", "addon", "addon", {}),
]

EUR_PER_USD = D("0.92")
STATES = ("running", "stopped", "hibernated")
H100_BEFORE_CUT = D("27.92")
H100_AFTER_CUT = D("23.92")


def _servers():
    # code: (running, stopped, hibernated, monthly cap, min billable minutes) in USD per hour
    return {
        "gpu-h100-8x": (H100_BEFORE_CUT, D("2.40"), D("0.80"), None, 10),
        "gpu-a100-8x": (D("14.32"), D("1.60"), D("0.60"), None, 10),
        "gpu-a100-1x": (D("1.79"), D("0.20"), D("0.08"), None, 10),
        "gpu-l40s-1x": (D("1.10"), D("0.12"), D("0.05"), D("599.00"), 10),
        "cpu-2-4": (D("0.0298"), D("0.004"), D("0.002"), D("19.99"), 0),
        "cpu-4-16": (D("0.119"), D("0.008"), D("0.004"), D("79.00"), 0),
        "cpu-16-64": (D("0.476"), D("0.03"), D("0.015"), D("319.00"), 0),
    }


def _eur(amount):
    return None if amount is None else (amount * EUR_PER_USD).quantize(D("0.0001"))


def _specs(product, currency, start):
    convert = (lambda a: a) if currency == "USD" else _eur
    code = product.code
    servers = _servers()
    if code in servers:
        running, stopped, hibernated, cap, minimum = servers[code]
        yield PriceSpec(product=product, currency=currency, state="running", amount=convert(running),
                        monthly_cap=convert(cap), min_billable_minutes=minimum, valid_from=start)
        for state, rate in (("stopped", stopped), ("hibernated", hibernated)):
            yield PriceSpec(product=product, currency=currency, state=state, amount=convert(rate), valid_from=start)
    elif code == "block-storage-ssd":
        for state in STATES:
            yield PriceSpec(product=product, currency=currency, state=state, unit="gb_month",
                            amount=convert(D("0.10")), valid_from=start)
    elif code == "archive-storage":
        for state in STATES:
            yield PriceSpec(product=product, currency=currency, state=state, unit="gb_month", pricing_model="package",
                            package_size=D("1000"), amount=convert(D("4.00")), valid_from=start)
    elif code == "bandwidth-egress":
        tiers = [Tier(D("10240"), convert(D("0.01"))), Tier(D("51200"), convert(D("0.008"))),
                 Tier(None, convert(D("0.005")))]
        yield PriceSpec(product=product, currency=currency, state="running", unit="gb", pricing_model="graduated",
                        amount=D("0"), tiers=tiers, included_quantity=D("1000"), valid_from=start)
    elif code == "ipv4":
        for state in STATES:
            yield PriceSpec(product=product, currency=currency, state=state, amount=convert(D("3.00")),
                            valid_from=start)
    else:
        hourly, monthly = {"addon-ssd-upgrade": (D("0.02"), D("12.00")), "addon-dedicated-ip": (D("0.005"), D("3.50")),
                           "addon-backup": (D("0.01"), D("5.00"))}[code]
        for state in STATES:
            yield PriceSpec(product=product, currency=currency, state=state, unit="hour", amount=convert(hourly),
                            valid_from=start)
            yield PriceSpec(product=product, currency=currency, state=state, unit="month", amount=convert(monthly),
                            valid_from=start)


def seed(stdout=None) -> None:
    now = timezone.now()
    history_start = datetime(2025, 1, 1, tzinfo=UTC)
    price_change = month_start(month_start(now) - timedelta(days=45))  # first of the month before last

    groups = {}
    for position, (slug, name, description) in enumerate(GROUPS):
        groups[slug], _ = ProductGroup.objects.get_or_create(
            slug=slug, defaults={"name": name, "description": description, "position": position})
    created_prices = 0
    for position, (code, name, group, kind, billing_model, attributes) in enumerate(PRODUCTS):
        product = Product.objects.filter(code=code).first()
        if product is None:
            product = services.product_create(code=code, name=name, group=groups[group], kind=kind,
                                              billing_model=billing_model, position=position, **attributes)
        for currency in ("USD", "EUR"):
            if Price.objects.filter(product=product, currency=currency).exists():
                continue
            for spec in _specs(product, currency, history_start):
                services.price_create(spec=spec, now=history_start)
                created_prices += 1
            if code == "gpu-h100-8x":
                # The H100 list price was cut: the old price stays in force before the change.
                services.price_create(spec=PriceSpec(
                    product=product, currency=currency, state="running",
                    amount=H100_AFTER_CUT if currency == "USD" else _eur(H100_AFTER_CUT),
                    min_billable_minutes=10, valid_from=price_change, note="2025 H100 price cut",
                ), now=price_change)
                created_prices += 1

    nordlicht = Organization.objects.filter(slug="nordlicht").first()
    if nordlicht is not None and not Contract.objects.filter(organization=nordlicht).exists():
        start = price_change
        products = {p.code: p for p in Product.objects.filter(code__in=["gpu-a100-8x", "gpu-l40s-1x",
                                                                      "block-storage-ssd"])}
        services.contract_create(
            organization=nordlicht, name="Render farm agreement", valid_from=start,
            valid_to=start.replace(year=start.year + 1), committed_monthly_minimum=D("20000.00"),
            note="Signed by N. Nordlicht and S. Staff; countersigned PDF in the CRM under 'Nordlicht'.",
            prices=[
                OverrideSpec(product=products["gpu-a100-8x"], kind="absolute", state="running", amount=D("11.50")),
                OverrideSpec(product=products["gpu-l40s-1x"], kind="discount", discount_percent=D("15")),
                OverrideSpec(product=products["block-storage-ssd"], kind="discount", discount_percent=D("20")),
            ],
            now=start,
        )
    if stdout:
        stdout.write(f"pricing: {Product.objects.count()} products, {created_prices} new prices, "
                     f"{Contract.objects.count()} contract(s)")
