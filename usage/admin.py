"""Console: resources with their history, events, rated usage and rollups. Everything
here is a record of what happened, so it is read-only: state changes come from the
platform's events or from services (credits' hibernate/resume), each audited."""

from django.contrib import admin

from accounts.admin_base import AuditedModelAdmin, ReadOnlyAdmin, ReadOnlyInline
from usage.models import (
    AddonAttachment,
    MeteringChunk,
    MeteringRun,
    Metric,
    RatedUsage,
    Resource,
    StateInterval,
    UsageAccrual,
    UsageDaily,
    UsageEvent,
    UsageHourly,
)


class StateIntervalInline(ReadOnlyInline):
    model = StateInterval
    fk_name = "resource"
    fields = ["started_at", "end_minute", "eff_state", "eff_product", "source", "reason", "event"]
    readonly_fields = fields
    ordering = ["started_at", "id"]


class AddonInline(StateIntervalInline):
    model = AddonAttachment
    fields = ["product", "attached_at", "detached_at"]
    readonly_fields = fields
    ordering = ["start_minute"]


@admin.register(Resource)
class ResourceAdmin(ReadOnlyAdmin):
    list_display = ["name", "external_id", "organization", "product", "kind", "state", "state_since"]
    list_filter = ["state", "kind", "product"]
    search_fields = ["external_id", "name", "organization__name"]
    list_select_related = ["organization", "product"]
    inlines = [StateIntervalInline, AddonInline]


@admin.register(UsageEvent)
class UsageEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "type", "resource", "organization", "occurred_at", "received_at", "metric", "quantity"]
    list_filter = ["type"]
    search_fields = ["event_id", "resource__external_id"]
    list_select_related = ["resource", "organization"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False


@admin.register(RatedUsage)
class RatedUsageAdmin(ReadOnlyAdmin):
    list_display = ["id", "organization_id", "resource_id", "product_id", "state", "kind", "start", "minutes",
                    "unit_rate", "amount", "currency", "run_id"]
    list_filter = ["kind", "state"]
    search_fields = ["=resource_id", "=organization_id", "=run_id"]
    show_full_result_count = False


@admin.register(UsageAccrual)
class UsageAccrualAdmin(ReadOnlyAdmin):
    list_display = ["id", "organization_id", "start_minute", "end_minute", "amount", "currency", "run_id"]
    search_fields = ["=organization_id", "=run_id"]
    show_full_result_count = False


@admin.register(UsageHourly)
class UsageHourlyAdmin(ReadOnlyAdmin):
    list_display = ["hour", "organization", "resource", "product", "state", "minutes", "amount", "currency"]
    list_filter = ["state"]
    search_fields = ["organization__name", "resource__external_id"]
    list_select_related = ["organization", "resource", "product"]
    show_full_result_count = False


@admin.register(UsageDaily)
class UsageDailyAdmin(UsageHourlyAdmin):
    list_display = ["day", "organization", "resource", "product", "state", "minutes", "amount", "currency"]
    date_hierarchy = "day"


@admin.register(MeteringChunk)
class MeteringChunkAdmin(ReadOnlyAdmin):
    list_display = ["number", "watermark", "updated_at"]


@admin.register(MeteringRun)
class MeteringRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "chunk", "from_minute", "until_minute", "rows", "corrections", "created_at",
                    "rolled_up_at"]
    list_filter = ["kind", "chunk"]


@admin.register(Metric)
class MetricAdmin(AuditedModelAdmin):
    list_display = ["code", "name", "unit", "aggregation", "product"]
