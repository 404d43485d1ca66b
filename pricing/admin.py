"""The price book in the billing console.

Every save goes through `pricing.services`, so the console obeys the same rules as the
API and leaves the same audit rows. The checks run while the form is validated, so a
refused change shows its reason beside the form and nothing is written. Prices and
contracts in force are read-only except for their end, which can only move earlier.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import construct_change_message
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.html import format_html

from accounts.admin_base import AuditedModelAdmin
from core.errors import DomainError
from core.money import format_rate
from pricing import services
from pricing.models import TIERED_MODELS, Contract, ContractPrice, Price, PriceTier, Product, ProductGroup
from pricing.quantity_pricing import Tier
from pricing.services import OverrideSpec, PriceSpec

PRICE_SPEC_FIELDS = ("product", "currency", "state", "unit", "pricing_model", "amount", "package_size",
                     "included_quantity", "monthly_cap", "min_billable_minutes", "valid_from", "valid_to", "note")


def _as_validation_error(exc: DomainError, known_fields) -> ValidationError:
    if exc.field and exc.field in known_fields:
        return ValidationError({exc.field: exc.message})
    return ValidationError(exc.message)


def _started(obj) -> bool:
    return obj is not None and obj.pk is not None and obj.valid_from <= timezone.now()


@admin.register(ProductGroup)
class ProductGroupAdmin(AuditedModelAdmin):
    list_display = ["name", "slug", "position", "product_count"]
    prepopulated_fields = {"slug": ["name"]}

    @admin.display(description="Products")
    def product_count(self, obj):
        return obj.products.count()


class ProductForm(forms.ModelForm):
    class Meta:
        model = Product
        fields = ["code", "name", "description", "group", "position", "is_active", "kind", "billing_model",
                  "unit_label", "vcpus", "ram_gb", "gpu_model", "gpu_count", "local_disk_gb"]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        instance = self.instance
        if instance.pk and "billing_model" in self.changed_data and instance.prices.exists():
            self.add_error("billing_model", "The billing model of a priced product cannot change; create a new product.")
        probe = Product(**{f: data.get(f) for f in services.PRODUCT_FIELDS if f in data}, code=data.get("code", ""))
        try:
            services.product_check(probe)
        except DomainError as exc:
            raise _as_validation_error(exc, self.fields) from exc
        return data


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    form = ProductForm
    list_display = ["code", "name", "group", "kind", "billing_model", "gpu", "vcpus", "ram_gb", "is_active"]
    list_filter = ["group", "kind", "billing_model", "is_active"]
    search_fields = ["code", "name", "gpu_model"]
    fieldsets = [
        (None, {"fields": ["code", "name", "description", "group", "position", "is_active"]}),
        ("Billing", {"fields": ["kind", "billing_model", "unit_label"]}),
        ("Flavour", {"fields": ["vcpus", "ram_gb", "gpu_model", "gpu_count", "local_disk_gb"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return ["code"] if obj is not None else []

    @admin.display(description="GPUs")
    def gpu(self, obj):
        return f"{obj.gpu_count} × {obj.gpu_model}" if obj.gpu_count else "—"

    def save_model(self, request, obj, form, change):
        fields = {f: form.cleaned_data[f] for f in services.PRODUCT_FIELDS if f in form.cleaned_data}
        if change:
            saved = services.product_update(product=obj, actor=request.user, **fields)
        else:
            saved = services.product_create(code=form.cleaned_data["code"], actor=request.user, **fields)
        obj.pk = saved.pk


class PriceTierFormSet(forms.BaseInlineFormSet):
    """Checks the whole price, tiers included, once the price form is valid: the only
    place that sees both."""

    def clean(self):
        super().clean()
        price = self.instance
        if getattr(price, "_admin_form_invalid", False) or price.product_id is None:
            return
        if _started(getattr(price, "_admin_original", None)):
            return  # a price in force keeps its tiers; only its end may change (checked by the form)
        tiers = [
            Tier(f.cleaned_data.get("up_to"), f.cleaned_data["unit_amount"], f.cleaned_data["flat_amount"])
            for f in self.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]
        spec = PriceSpec(**{name: getattr(price, name) for name in PRICE_SPEC_FIELDS}, tiers=tiers)
        try:
            price._admin_spec = services.price_check(spec, replacing=price if price.pk else None,
                                                     close_previous=price.pk is None)
        except DomainError as exc:
            raise ValidationError(exc.message) from exc


class PriceTierInline(admin.TabularInline):
    model = PriceTier
    formset = PriceTierFormSet
    extra = 0
    fields = ["up_to", "unit_amount", "flat_amount"]
    verbose_name = "tier"
    verbose_name_plural = ("Tiers (graduated and volume prices only). Each goes up to and including its "
                           "“up to”, as Stripe writes tiers: a volume tier up to 10,000 prices exactly 10,000 units; "
                           "leave the last one's empty.")

    def has_change_permission(self, request, obj=None):
        return not _started(obj) and super().has_change_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return not _started(obj) and super().has_add_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not _started(obj) and super().has_delete_permission(request, obj)


class PriceForm(forms.ModelForm):
    class Meta:
        model = Price
        fields = list(PRICE_SPEC_FIELDS)
        help_texts = {"unit": "Empty: the product's usual unit (hour for hourly, month for monthly …)."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "unit" in self.fields:
            self.fields["unit"].required = False

    def clean(self):
        data = super().clean()
        original = Price.objects.filter(pk=self.instance.pk).first() if self.instance.pk else None
        self.instance._admin_original = original
        self.instance._admin_form_invalid = bool(self.errors)
        if _started(original) and "valid_to" in self.changed_data:
            if data.get("valid_to") is None:
                self.add_error("valid_to", "A price in force can only be given an earlier end, not made open again.")
            else:
                try:
                    services.price_end_check(price=original, at=data["valid_to"])
                except DomainError as exc:
                    raise _as_validation_error(exc, self.fields) from exc
        return data


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    form = PriceForm
    inlines = [PriceTierInline]
    list_display = ["product", "currency", "state", "rate", "unit", "pricing_model", "monthly_cap", "valid_from",
                    "valid_to", "status"]
    list_filter = ["currency", "state", "pricing_model", "unit", "product__group", "product"]
    search_fields = ["product__code", "product__name", "note"]
    list_select_related = ["product"]
    date_hierarchy = "valid_from"
    autocomplete_fields = ["product"]
    fieldsets = [
        (None, {"fields": ["product", "currency", "state", "unit"]}),
        ("Amount", {"fields": ["pricing_model", "amount", "package_size", "included_quantity", "monthly_cap",
                               "min_billable_minutes"]}),
        ("In force", {"fields": ["valid_from", "valid_to", "note"],
                      "description": "Half-open, in UTC, on whole minutes. A price in force is never edited: give "
                                     "it an end and add the new price from that minute."}),
    ]

    def get_readonly_fields(self, request, obj=None):
        if _started(obj):
            return [f for section in self.fieldsets for f in section[1]["fields"] if f != "valid_to"]
        return []

    def has_delete_permission(self, request, obj=None):
        return not _started(obj) and super().has_delete_permission(request, obj)

    @admin.display(description="Rate", ordering="amount")
    def rate(self, obj):
        if obj.pricing_model in TIERED_MODELS:
            return "tiered"
        return format_rate(obj.amount, obj.currency)

    @admin.display(description="Status")
    def status(self, obj):
        now = timezone.now()
        if obj.valid_from > now:
            return format_html('<span style="color:{}">{}</span>', "#2563eb", "scheduled")
        if obj.valid_to is not None and obj.valid_to <= now:
            return format_html('<span style="color:{}">{}</span>', "#6b7280", "ended")
        return format_html('<strong style="color:{}">{}</strong>', "#15803d", "in force")

    def construct_change_message(self, request, form, formsets, add):
        # The inline rows were written by the service, not by the formsets.
        return construct_change_message(form, [], add)

    def save_model(self, request, obj, form, change):
        # Written in save_related, where the tiers are known; the admin's transaction wraps both.
        pass

    def save_related(self, request, form, formsets, change):
        obj = form.instance
        original = getattr(obj, "_admin_original", None)
        if _started(original):
            if "valid_to" in form.changed_data:
                services.price_end(price=original, at=form.cleaned_data["valid_to"], actor=request.user)
            return
        if original is not None:
            saved = services.price_reschedule(price=original, spec=obj._admin_spec, actor=request.user)
        else:
            saved = services.price_create(spec=obj._admin_spec, actor=request.user)
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.price_cancel(price=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for price in queryset:
            services.price_cancel(price=price, actor=request.user)


class ContractPriceFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        contract = self.instance
        if getattr(contract, "_admin_form_invalid", False) or contract.organization_id is None:
            return
        if _started(getattr(contract, "_admin_original", None)):
            return
        overrides = [
            OverrideSpec(product=f.cleaned_data["product"], kind=f.cleaned_data["kind"],
                         state=f.cleaned_data.get("state") or "", amount=f.cleaned_data.get("amount"),
                         discount_percent=f.cleaned_data.get("discount_percent"),
                         monthly_cap=f.cleaned_data.get("monthly_cap"))
            for f in self.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]
        try:
            contract._admin_overrides = services.contract_check(
                organization=contract.organization, valid_from=contract.valid_from, valid_to=contract.valid_to,
                note=contract.note, committed_monthly_minimum=contract.committed_monthly_minimum, prices=overrides,
            )
        except DomainError as exc:
            raise ValidationError(exc.message) from exc


class ContractPriceInline(admin.TabularInline):
    model = ContractPrice
    formset = ContractPriceFormSet
    extra = 1
    fields = ["product", "state", "kind", "amount", "discount_percent", "monthly_cap"]
    autocomplete_fields = ["product"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return obj is None and super().has_add_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return obj is None and super().has_delete_permission(request, obj)


class ContractForm(forms.ModelForm):
    class Meta:
        model = Contract
        fields = ["organization", "name", "valid_from", "valid_to", "committed_monthly_minimum", "note"]

    def clean(self):
        data = super().clean()
        original = Contract.objects.filter(pk=self.instance.pk).first() if self.instance.pk else None
        self.instance._admin_original = original
        self.instance._admin_form_invalid = bool(self.errors)
        if original is not None and "valid_to" in self.changed_data:
            if data.get("valid_to") is None:
                self.add_error("valid_to", "A contract can only be given an earlier end, not made open again.")
            else:
                try:
                    services.contract_end_check(contract=original, at=data["valid_to"])
                except DomainError as exc:
                    raise _as_validation_error(exc, self.fields) from exc
        return data


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
    """A contract's terms are fixed once saved: change them by ending it and adding a new one."""

    form = ContractForm
    inlines = [ContractPriceInline]
    list_display = ["name", "organization", "currency", "committed_monthly_minimum", "valid_from", "valid_to",
                    "override_count"]
    list_filter = ["currency"]
    search_fields = ["name", "organization__name", "note"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return ["organization", "name", "currency", "valid_from", "committed_monthly_minimum", "note"]
        return []

    def has_delete_permission(self, request, obj=None):
        return not _started(obj) and super().has_delete_permission(request, obj)

    @admin.display(description="Overrides")
    def override_count(self, obj):
        return obj.prices.count()

    def construct_change_message(self, request, form, formsets, add):
        # The inline rows were written by the service, not by the formsets.
        return construct_change_message(form, [], add)

    def save_model(self, request, obj, form, change):
        pass  # written in save_related with its overrides

    def save_related(self, request, form, formsets, change):
        obj = form.instance
        original = getattr(obj, "_admin_original", None)
        if original is not None:
            if "valid_to" in form.changed_data:
                services.contract_end(contract=original, at=form.cleaned_data["valid_to"], actor=request.user)
            return
        data = form.cleaned_data
        saved = services.contract_create(
            organization=data["organization"], name=data["name"], valid_from=data["valid_from"],
            valid_to=data.get("valid_to"), committed_monthly_minimum=data["committed_monthly_minimum"],
            note=data["note"], prices=obj._admin_overrides, actor=request.user,
        )
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.contract_cancel(contract=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for contract in queryset:
            services.contract_cancel(contract=contract, actor=request.user)
