"""The prepaid credit ledger and everything that acts on a balance.

Invariants:
- `LedgerEntry` rows are append-only. The database itself refuses UPDATE and DELETE on
  them (triggers in migration 0002); a mistake is corrected by a reversal row.
- For every (organisation, currency): `Balance.amount == SUM(LedgerEntry.amount)` and
  `Balance.promo_amount == SUM(LedgerEntry.promo_amount)`. Both are only ever changed in
  the transaction that appends the entry, under the balance row's lock
  (`select_for_update`); `check_ledger` proves it.
- `promo_amount` is the promotional part of `amount`: promotional credit is consumed by
  usage before paid credit, and what is left of a grant at its expiry is removed by a
  `promo_expiry` entry.
- Amounts are signed: credit is positive, a deduction negative; `money_field` precision.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.formatting import format_datetime
from core.money import currency_field, format_money, money_field

ZERO = Decimal("0")


class EntryKind(models.TextChoices):
    TOPUP = "topup", "Top-up"
    USAGE = "usage", "Usage"
    PROMO_GRANT = "promo_grant", "Promotional credit"
    PROMO_EXPIRY = "promo_expiry", "Promotional credit expired"
    REFUND = "refund", "Refund"
    ADJUSTMENT = "adjustment", "Adjustment"
    INVOICE_SETTLEMENT = "invoice_settlement", "Invoice settlement"


# Deductions of these kinds consume promotional credit first; other deductions (a refund
# of paid money, a staff correction) touch paid credit only.
PROMO_CONSUMING_KINDS = frozenset({EntryKind.USAGE, EntryKind.INVOICE_SETTLEMENT})


class Balance(models.Model):
    """The cached balance of one organisation in one currency, plus the state the credit
    jobs keep about it (burn rate, warnings sent, depletion, hibernation)."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="balances")
    currency = currency_field()
    amount = money_field(default=ZERO, help_text="Sum of every ledger entry. May go negative (usage in arrears).")
    promo_amount = money_field(default=ZERO, help_text="The promotional part of the amount.")
    # Runway, computed by `credits_runway_task`.
    burn_rate_per_hour = money_field(default=ZERO)
    runway_hours = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    burn_computed_at = models.DateTimeField(null=True, blank=True)
    # Warning keys ("runway:24", "balance:10") already sent for the current crossing.
    warnings_sent = models.JSONField(default=list, blank=True)
    # When the balance last reached zero or below (start of the hibernation grace time).
    depleted_at = models.DateTimeField(null=True, blank=True)
    hibernated_at = models.DateTimeField(null=True, blank=True)
    # Resources credits hibernated (ids), so resume wakes exactly those.
    hibernated_resources = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "currency"], name="credits_balance_org_currency_uniq"),
            models.CheckConstraint(condition=Q(promo_amount__gte=0), name="credits_balance_promo_nonneg"),
        ]
        permissions = [("adjust_credit", "Adjust credit and grant promotional credit (with a reason)")]

    def __str__(self) -> str:
        return f"{self.organization_id} {format_money(self.amount, self.currency)}"

    @property
    def paid_amount(self) -> Decimal:
        return self.amount - self.promo_amount


class LedgerEntry(models.Model):
    """One credit transaction. Never edited, never deleted (the database refuses)."""

    # Indexes are few and partial where the column is mostly empty: the credit sync inserts
    # one row per organisation every minute. `credits_entry_org_time` serves the FK too.
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="ledger_entries",
                                     db_index=False)
    currency = currency_field()
    kind = models.CharField(max_length=20, choices=EntryKind.choices)
    amount = money_field(help_text="Signed: credit positive, deduction negative.")
    promo_amount = money_field(default=ZERO, help_text="Signed change of the promotional part.")
    balance_after = money_field()
    reason = models.TextField()
    # What caused it. Unique per organisation when set, so replaying the cause is a no-op:
    # "topup:<id>", "usage-run:<run id>", "promo-expiry:<grant id>", "reversal:<entry id>".
    reference = models.CharField(max_length=200, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+", db_index=False)
    actor_api_key = models.ForeignKey("accounts.ApiKey", null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="+", db_index=False)
    # Usage entries: the metering run and the rated-usage ids they settle.
    metering_run_id = models.BigIntegerField(null=True, blank=True)
    usage_first_id = models.BigIntegerField(null=True, blank=True)
    usage_last_id = models.BigIntegerField(null=True, blank=True)
    usage_rows = models.PositiveIntegerField(null=True, blank=True)
    # Usage entries: the half-open span of metered time they cover (burn rate reads it).
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    promo_grant = models.ForeignKey("PromoGrant", null=True, blank=True, on_delete=models.PROTECT, related_name="entries",
                                    db_index=False)
    # At most one reversal per entry (partial unique constraint below).
    reverses = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals",
                                 db_index=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "ledger entries"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "reference"], condition=~Q(reference=""), name="credits_entry_reference_uniq"
            ),
            models.UniqueConstraint(fields=["reverses"], condition=Q(reverses__isnull=False),
                                    name="credits_entry_one_reversal"),
        ]
        indexes = [
            models.Index(fields=["organization", "-created_at", "-id"], name="credits_entry_org_time"),
            models.Index(fields=["period_end"], condition=Q(kind="usage"), name="credits_entry_usage_period"),
            models.Index(fields=["actor"], condition=Q(actor__isnull=False), name="credits_entry_actor"),
            models.Index(fields=["actor_api_key"], condition=Q(actor_api_key__isnull=False), name="credits_entry_api_key"),
            models.Index(fields=["promo_grant"], condition=Q(promo_grant__isnull=False), name="credits_entry_grant"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {format_money(self.amount, self.currency)}"

    @property
    def actor_display(self) -> str:
        if self.actor_id:
            return str(self.actor)
        if self.actor_api_key_id:
            return f"API key {self.actor_api_key}"
        return "system"


class PromoGrant(models.Model):
    """Promotional credit with an expiry. `remaining` falls as usage consumes it
    (earliest expiry first); what is left at `expires_at` is removed by an expiry entry."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="promo_grants")
    currency = currency_field()
    amount = money_field()
    remaining = money_field()
    expires_at = models.DateTimeField()
    reason = models.TextField()
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["expires_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(remaining__gte=0) & Q(remaining__lte=models.F("amount")),
                                   name="credits_promo_remaining_in_range"),
        ]
        indexes = [models.Index(fields=["expires_at"], condition=Q(expired_at__isnull=True), name="credits_promo_open")]

    def __str__(self) -> str:
        return f"{format_money(self.amount, self.currency)} until {format_datetime(self.expires_at)}"


class TopUpSource(models.TextChoices):
    MANUAL = "manual", "Requested"
    AUTO = "auto", "Auto top-up"


class TopUpStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (retrying)"
    ABANDONED = "abandoned", "Failed (gave up)"


class TopUp(models.Model):
    """A request to buy credit, carried out by the top-up handler (payments).

    Auto top-ups carry a `crossing_key` naming the last ledger entry when the balance was
    found below the threshold; the crossing lasts until the balance is back at or above
    it, and has at most one attempt (services.auto_topup_check)."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="topups")
    source = models.CharField(max_length=10, choices=TopUpSource.choices)
    status = models.CharField(max_length=10, choices=TopUpStatus.choices, default=TopUpStatus.PENDING)
    amount = money_field()
    currency = currency_field()
    crossing_key = models.CharField(max_length=100, null=True, blank=True)
    # Portal form submissions carry a one-time key, so a double click buys credit once.
    request_key = models.CharField(max_length=64, null=True, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    requested_by_api_key = models.ForeignKey("accounts.ApiKey", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    provider_reference = models.CharField(max_length=200, blank=True)
    ledger_entry = models.OneToOneField(LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="topup")
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "crossing_key"], name="credits_topup_one_per_crossing"),
            models.UniqueConstraint(fields=["organization", "request_key"], name="credits_topup_request_key_uniq"),
            # One automatic top-up under way (pending, or failed and retrying) per organisation:
            # a second one while the first is open would charge the saved card twice.
            models.UniqueConstraint(fields=["organization"], condition=Q(source="auto", status__in=["pending", "failed"]),
                                    name="credits_topup_one_auto_in_flight"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="credits_topup_amount_positive"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="credits_topup_due")]

    def __str__(self) -> str:
        return f"top-up #{self.pk} {format_money(self.amount, self.currency)} ({self.status})"

    @property
    def ledger_reference(self) -> str:
        return f"topup:{self.pk}"

    @property
    def origin_label(self) -> str:
        """Who started it, in the words every list uses: a person in the portal, an API
        key, or the auto top-up settings."""
        if self.source == TopUpSource.AUTO:
            return "Automatic top-up"
        return "API top-up" if self.requested_by_api_key_id else "Manual top-up"


class AutoTopUpSettings(models.Model):
    organization = models.OneToOneField("accounts.Organization", on_delete=models.CASCADE, related_name="auto_topup")
    enabled = models.BooleanField(default=False)
    threshold = money_field(default=ZERO, help_text="Top up when the balance falls below this.")
    amount = money_field(default=ZERO, help_text="How much to buy each time.")
    monthly_cap = money_field(null=True, blank=True, help_text="At most this much auto top-up per calendar month.")
    updated_at = models.DateTimeField(auto_now=True)
    # When enabled/threshold/amount/cap last really changed (auto_topup_configure): only auto
    # top-ups made since then answer the current crossing. Never moved by a save that changes
    # nothing, which would re-arm the crossing and start a second top-up.
    rearmed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "auto top-up settings"
        constraints = [
            models.CheckConstraint(condition=Q(threshold__gte=0) & Q(amount__gte=0), name="credits_autotopup_nonneg"),
        ]

    def __str__(self) -> str:
        return f"auto top-up {'on' if self.enabled else 'off'} for {self.organization_id}"


class EventKind(models.TextChoices):
    RUNWAY_WARNING = "credits.runway_warning", "Runway warning"
    BALANCE_WARNING = "credits.balance_warning", "Low balance warning"
    TOPUP_SUCCEEDED = "credits.topup_succeeded", "Top-up succeeded"
    TOPUP_FAILED = "credits.topup_failed", "Top-up failed"
    AUTO_TOPUP_STARTED = "credits.auto_topup_started", "Auto top-up started"
    AUTO_TOPUP_CAPPED = "credits.auto_topup_capped", "Auto top-up skipped (monthly cap)"
    HIBERNATED = "credits.hibernated", "Resources hibernated"
    RESUMED = "credits.resumed", "Resources resumed"
    DELETION_NOTICE = "credits.deletion_notice", "Disk deletion scheduled"
    DELETION_REQUESTED = "credits.deletion_requested", "Disk deletion requested"


class CreditEvent(models.Model):
    """Something integrators and customers should hear about; append-only. The API lists
    them (`/credits/events`), the portal and console show them."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="credit_events")
    kind = models.CharField(max_length=40, choices=EventKind.choices)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at", "-id"], name="credits_event_org_time")]

    def __str__(self) -> str:
        return f"{self.kind} {self.organization_id}"


class ProvisioningAction(models.TextChoices):
    HIBERNATE = "hibernate", "Hibernate"
    RESUME = "resume", "Resume"
    DELETE_DISKS = "delete_disks", "Delete disks"


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"


class ProvisioningRequest(models.Model):
    """Outbox of hibernate/resume requests to the provisioning platform. Written in the
    same transaction as the decision; delivered after commit and retried with backoff
    until acknowledged. Staff see attempts and the last error."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="provisioning_requests")
    action = models.CharField(max_length=20, choices=ProvisioningAction.choices)
    payload = models.JSONField()
    status = models.CharField(max_length=15, choices=RequestStatus.choices, default=RequestStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="credits_provreq_due")]

    def __str__(self) -> str:
        return f"{self.action} {self.organization_id} ({self.status})"


class SettledRun(models.Model):
    """A metering run whose rated usage is deducted. Inserted first in the settling
    transaction: a second settlement of the same run (a rerun, the sweeper, a concurrent
    worker) finds the row and does nothing."""

    run_id = models.BigIntegerField(primary_key=True)
    settled_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"run {self.run_id} settled"


class AdmissionPolicy(models.Model):
    """How much runway an organisation must keep to start something (credits.admission):
    at least `min_runway_hours` at the burn rate after the start, of prepaid credit or of
    what a postpaid credit limit leaves. Without a row, `CREDITS_ADMISSION_MIN_RUNWAY_HOURS`
    applies. `enforce` off lets a trusted customer start anything (the answer still says
    what the runway would be). Edited in the console, every change audited."""

    organization = models.OneToOneField("accounts.Organization", on_delete=models.CASCADE,
                                        related_name="admission_policy")
    min_runway_hours = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal(1),
                                           help_text="Hours of runway the organisation must keep after a start.")
    enforce = models.BooleanField(default=True, help_text="Off: every start is allowed (the answer still "
                                                          "reports the runway).")
    note = models.CharField(max_length=200, blank=True, help_text="Why this organisation differs from the default.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "admission policies"
        constraints = [models.CheckConstraint(condition=Q(min_runway_hours__gte=0), name="credits_admission_hours_gte_0")]

    def __str__(self) -> str:
        return f"{self.organization_id}: {self.min_runway_hours} h{'' if self.enforce else ' (off)'}"


class LadderReason(models.TextChoices):
    """Why the resources were hibernated. Only credits' own hibernation for lack of credit
    (`hibernation.hibernate`, which sets `Balance.hibernated_at`) starts a ladder; a
    budget's hard cap hibernates without one and never leads to deletion."""

    CREDIT_EXHAUSTED = "credit_exhausted", "Credit exhausted"


class LadderStatus(models.TextChoices):
    ACTIVE = "active", "Notices under way"
    CANCELLED = "cancelled", "Cancelled (resumed)"
    DELETION_REQUESTED = "deletion_requested", "Disk deletion requested"


class LadderPolicy(models.Model):
    """An organisation's zero-balance ladder, when it differs from the defaults
    `CREDITS_LADDER_NOTICE_DAYS` and `CREDITS_LADDER_DELETE_AFTER_DAYS` (there are no
    plans: this row is the per-customer override). Read when a hibernation starts its
    ladder: a ladder under way keeps the dates its notices named."""

    organization = models.OneToOneField("accounts.Organization", on_delete=models.CASCADE, related_name="ladder_policy")
    notice_days = models.JSONField(default=list, blank=True,
                                   help_text="Days after hibernation to send a notice, e.g. [1, 7, 12].")
    delete_after_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Days hibernated before the disks are deleted; empty: never delete.")
    note = models.CharField(max_length=200, blank=True, help_text="Why this organisation differs from the default.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "ladder policies"
        constraints = [models.CheckConstraint(condition=Q(delete_after_days__isnull=True) | Q(delete_after_days__gte=1),
                                              name="credits_ladder_policy_days_gte_1")]

    def __str__(self) -> str:
        return f"{self.organization_id}: notices {self.notice_days}, delete after {self.delete_after_days}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        days = self.notice_days
        if not isinstance(days, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                 for d in days):
            raise ValidationError({"notice_days": "A list of whole days, e.g. [1, 7, 12]."})
        if len(set(days)) != len(days):
            raise ValidationError({"notice_days": "Each day once."})
        if self.delete_after_days is not None and any(d >= self.delete_after_days for d in days):
            raise ValidationError({"notice_days": "Every notice must come before the deletion day."})


class HibernationLadder(models.Model):
    """One hibernation for lack of credit and what follows it (credits.ladder): notices on
    `notice_days`, then at `deletion_due_at` a `delete_disks` request in the provisioning
    outbox. Made in the transaction that hibernates; cancelled in the one that resumes.
    `notices_done` holds the days sent or passed over (a late run sends only the latest
    due notice), so each notice goes out once."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="ladders")
    balance = models.ForeignKey(Balance, on_delete=models.PROTECT, related_name="ladders")
    reason = models.CharField(max_length=20, choices=LadderReason.choices, default=LadderReason.CREDIT_EXHAUSTED)
    status = models.CharField(max_length=20, choices=LadderStatus.choices, default=LadderStatus.ACTIVE)
    hibernated_at = models.DateTimeField(help_text="The balance's hibernation this ladder follows.")
    started_at = models.DateTimeField(help_text="Day 0 of the notices and the deletion: the hibernation, "
                                                "or later for a hibernation older than the ladder.")
    resource_ids = models.JSONField(default=list, blank=True)
    notice_days = models.JSONField(default=list, blank=True)
    notices_done = models.JSONField(default=list, blank=True)
    last_notice_at = models.DateTimeField(null=True, blank=True)
    deletion_due_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never deleted.")
    deletion_request = models.OneToOneField(ProvisioningRequest, null=True, blank=True, on_delete=models.PROTECT,
                                            related_name="ladder")
    ended_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["balance", "hibernated_at"], name="credits_ladder_one_per_hibernation"),
            models.UniqueConstraint(fields=["balance"], condition=Q(status="active"), name="credits_ladder_one_active"),
        ]
        indexes = [models.Index(fields=["started_at"], condition=Q(status="active"), name="credits_ladder_active")]

    def __str__(self) -> str:
        return f"ladder {self.organization_id} since {format_datetime(self.hibernated_at)} ({self.status})"
