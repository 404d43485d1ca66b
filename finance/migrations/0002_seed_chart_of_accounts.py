"""The default chart of accounts (SKR03-style numbers for DATEV) and the mapping of
movements to counter accounts. Staff edit both in the console afterwards; this runs once.
One revenue account per product group that exists when it runs (8201, 8202, …); groups
added later book to 8200 until staff give them their own."""

from decimal import Decimal

from django.db import migrations

ACCOUNTS = [
    # number, name, type, role, qualifiers
    ("1200", "Bank", "asset", "provider_clearing", {"provider": "manual"}),
    ("1361", "Stripe clearing", "asset", "provider_clearing", {"provider": "stripe"}),
    ("1362", "PayPal clearing", "asset", "provider_clearing", {"provider": "paypal"}),
    ("1369", "Sandbox clearing (no real money)", "asset", "provider_clearing", {"provider": "sandbox"}),
    ("1400", "Receivables (postpaid customers)", "asset", "receivables", {}),
    ("0998", "Allowance for written-off receivables", "asset", "allowance", {}),
    ("1710", "Customer credit held (prepaid)", "liability", "customer_credit", {}),
    ("1719", "Promotional credit held (not cash)", "liability", "promo_credit", {}),
    ("0990", "Deferred revenue", "liability", "deferred_revenue", {}),
    ("1590", "Suspense: movements of unknown origin", "liability", "suspense", {}),
    ("1770", "Tax payable, other rates and countries", "liability", "tax_payable", {}),
    ("1771", "Tax payable DE 7 %", "liability", "tax_payable", {"tax_country": "DE", "tax_rate": Decimal("7")}),
    ("1776", "Tax payable DE 19 %", "liability", "tax_payable", {"tax_country": "DE", "tax_rate": Decimal("19")}),
    ("8200", "Revenue, other (contract minimums, groups without an account)", "income", "revenue", {}),
    ("8290", "Usage consumed, not yet invoiced by product group", "income", "usage_revenue", {}),
    ("8700", "Discounts and coupons", "income", "discounts", {}),
    ("2700", "Breakage income (expired credit)", "income", "breakage", {}),
    ("2400", "Bad debt (write-offs)", "expense", "bad_debt", {}),
    ("4600", "Promotional credit expense", "expense", "promo_expense", {}),
    ("4900", "Staff credit adjustments", "expense", "adjustments", {}),
]

MOVEMENTS = {
    "usage": "8290",
    "promo_grant": "4600",
    "promo_expiry": "2700",
    "adjustment": "4900",
    "write_off": "2400",
    "other": "1590",
}


def seed(apps, schema_editor):
    Account = apps.get_model("finance", "Account")
    MovementAccount = apps.get_model("finance", "MovementAccount")
    ProductGroup = apps.get_model("pricing", "ProductGroup")
    db = schema_editor.connection.alias  # the database being migrated, not always the default
    by_number = {}
    for number, name, type_, role, qualifiers in ACCOUNTS:
        by_number[number] = Account.objects.using(db).create(number=number, name=name, type=type_, role=role, **qualifiers)
    for i, group in enumerate(ProductGroup.objects.using(db).order_by("position", "name")[:89], start=1):
        Account.objects.using(db).create(number=f"82{i:02d}", name=f"Revenue {group.name}"[:100], type="income", role="revenue",
                               product_group=group)
    for movement, number in MOVEMENTS.items():
        MovementAccount.objects.using(db).create(movement=movement, account=by_number[number])


class Migration(migrations.Migration):
    dependencies = [
        ("finance", "0001_chart_and_journal"),
        ("pricing", "0001_initial"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
