"""Demo credit for `make run`: opening top-ups (before usage's demo history is metered), a
promotional grant, auto top-up for Acme AI, and TinyML Studio, whose $90.00 ran out days
ago: `seed_ladder` hibernates it at the minute its credit ran out and walks the
zero-balance ladder up to now (credits.ladder), so its dashboard banner shows the next
notice and the disks' deletion date. Idempotent: every entry carries a reference, and a
ladder that exists is left to the beat task, so a second run adds nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from accounts.models import Organization
from credits import services
from credits.models import Balance, PromoGrant

OPENING = [
    # (org slug, amount, reference): enough for usage's demo history, TinyML left low.
    ("acme-ai", Decimal("5000.00"), "demo:opening-topup"),
    ("tinyml", Decimal("90.00"), "demo:opening-topup"),  # spent about three days ago: seed_ladder
]
# What Acme AI has left once the demo history is paid for: about five days of its fleet.
DEMO_HEALTHY_BALANCE = Decimal("3000.00")


def seed(stdout=None) -> None:
    orgs = {o.slug: o for o in Organization.objects.filter(slug__in=["acme-ai", "tinyml"])}
    for slug, amount, reference in OPENING:
        if slug in orgs:
            services.credit_topup(organization=orgs[slug], amount=amount, currency=orgs[slug].currency,
                                  reference=reference, reason="Opening top-up (demo data)")
    acme = orgs.get("acme-ai")
    if acme is not None:
        if not PromoGrant.objects.filter(organization=acme, reason="Launch promotion (demo data)").exists():
            services.promo_grant(organization=acme, amount=Decimal("100.00"), reason="Launch promotion (demo data)",
                                 expires_at=timezone.now() + timedelta(days=30))
    if stdout:
        stdout.write(f"credits: opening balances for {len(orgs)} organisations")


def seed_runway(stdout=None) -> None:
    """After usage's demo history: burn rates, runway and the warnings they call for."""
    from credits import runway

    acme = Organization.objects.filter(slug="acme-ai").first()
    if acme is not None:
        # The demo history (six days of an 8×H100 node among others) costs more than the
        # opening top-up: Acme starts the demo with a healthy balance, not hibernated.
        amount = (Balance.objects.filter(organization=acme, currency=acme.currency)
                  .values_list("amount", flat=True).first() or Decimal(0))
        if amount < DEMO_HEALTHY_BALANCE:
            services.credit_topup(organization=acme, amount=(DEMO_HEALTHY_BALANCE - amount).quantize(Decimal("0.01")),
                                  currency=acme.currency, reference="demo:cover-history",
                                  reason="Top-up covering the demo history (demo data)")
        services.auto_topup_configure(organization=acme, enabled=True, threshold=Decimal("200.00"),
                                      amount=Decimal("500.00"), monthly_cap=Decimal("2000.00"))
    runway.compute_burn_rates()
    sent = runway.send_warnings()
    if stdout:
        stdout.write(f"credits: burn rates computed, {sent} warning(s)")


LADDER_ORG = "tinyml"


def seed_ladder(stdout=None) -> None:
    """TinyML Studio, hibernated when its credit ran out days ago, and the ladder since.

    Called by usage.demo.seed in its transaction once the demo history's change points are
    written and before they are metered (`USAGE_DEMO_BEFORE_METERING`). The clock moves
    through the real code, as the tests' clocks do: metering TinyML's chunk up to each
    clock hour (whole hours at a time while its credit lasts longer), each run settled at once (`credits.sync.settle_run`; the after-commit hook then finds it
    settled) with every organisation's follow-up but TinyML's; in the hour its $90.00
    runs out at its fleet's rate (usage.demo.FLEET, unchanged since before), metering up
    to the minute after, where `hibernation.hibernate(now=…)` finds the balance at or
    below zero and hibernates it (and starts its ladder); then, for each ladder step due
    since (the day-1 notice, …), metering up to its day and `ladder.advance(now=…)`, as
    the beat task would have taken it. usage.demo.seed meters the rest, at the
    hibernated rate. A second run finds the ladder and changes nothing."""
    import dataclasses
    import math

    from credits import hibernation, ladder, sync
    from credits.models import HibernationLadder, SettledRun
    from usage import metering
    from usage.models import MeteringRun, Resource, from_minute
    from usage.selectors import LIVE_STATES, running_costs

    org = Organization.objects.filter(slug=LADDER_ORG).first()
    balance = Balance.objects.filter(organization=org, currency=org.currency).first() if org else None
    if org is None or balance is None or balance.hibernated_at is not None \
            or HibernationLadder.objects.filter(organization=org).exists():
        return
    live = list(Resource.objects.filter(organization=org, state__in=LIVE_STATES))
    rate = sum((line.hourly_rate or Decimal(0) for line in running_costs(organization=org, now=timezone.now())),
               Decimal(0))
    if not live or rate <= 0 or any(r.state != "running" for r in live):
        return  # nothing runs, or a fleet that changes: nothing to show

    chunk = org.pk % metering.chunk_count()  # TinyML's chunk only: the others in one pass, later

    def meter_to(until):
        metering.meter_pass(until=until, chunks=[chunk])
        for run_id in (MeteringRun.objects.filter(kind="meter").exclude(
                pk__in=SettledRun.objects.values("run_id")).order_by("id").values_list("id", flat=True)):
            result = sync.settle_run(run_id=run_id)
            if result.settled:
                sync.follow_up(dataclasses.replace(result, balances=[b for b in result.balances if b[0] != org.pk]))
        balance.refresh_from_db()

    end = from_minute(metering.until_minute())
    hour = timedelta(hours=1)
    t = max(r.state_since for r in live).replace(minute=0, second=0, microsecond=0) + hour
    ran_out = None
    while t <= end and ran_out is None:
        meter_to(t)
        if balance.amount <= 0:
            ran_out = t
        elif balance.amount <= rate:  # runs out within the hour: the minute after
            ran_out = t + timedelta(minutes=math.ceil(balance.amount / rate * 60))
            while ran_out <= end:
                meter_to(ran_out)
                if balance.amount <= 0:
                    break
                ran_out += timedelta(minutes=1)
        else:  # whole hours left at this rate: to the hour before the one it runs out in
            t += hour * max(1, int(balance.amount / rate) - 1)
            continue
        t += hour
    if ran_out is None or ran_out > end or balance.amount > 0:
        return  # credit left at the end of the history
    if hibernation.hibernate(balance_id=balance.pk, now=ran_out) is None:
        return
    current = HibernationLadder.objects.get(balance=balance, hibernated_at=ran_out)
    due = sorted({*(current.started_at + timedelta(days=d) for d in current.notice_days),
                  *([current.deletion_due_at] if current.deletion_due_at else [])})
    steps = []
    for at in (at for at in due if at <= end):
        meter_to(at)
        steps.append(ladder.advance(ladder_id=current.pk, now=at))
    if stdout:
        stdout.write(f"  credits: {org.name} hibernated for lack of credit at {ran_out:%Y-%m-%d %H:%M} UTC; "
                     f"ladder steps since: {', '.join(s for s in steps if s) or 'none'}")
