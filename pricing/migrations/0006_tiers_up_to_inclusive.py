"""Tiers as Stripe and Lago write them: an inclusive `up_to` instead of `[lower, upper)`.

No quantity changes band, so no amount changes:
- graduated: the units in a band are measured (`min(q, upper) - lower`), and a band's flat
  fee applies when q > lower; a boundary point holds no units. `up_to = upper` is exact for
  every quantity, however many decimals it has.
- volume: the whole quantity takes the band with q < upper; now the band with q <= up_to.
  The largest quantity below `upper` on the price book's grid (6 decimals) is
  `upper - 0.000001`, so `up_to = upper - 0.000001`: exact for every quantity with at
  most 6 decimals (10,000 stays in the next band; 9,999.5 and 9,999.999999 stay in this
  one; 10,000.5 in the next). A quantity with more decimals strictly between
  `upper - 0.000001` and `upper` would move up one band: no exact inclusive bound exists
  for it. Amounts already invoiced are stored on invoice lines and are not touched.
"""

from decimal import Decimal

from django.db import migrations, models


STEP = Decimal("0.000001")  # one unit of QUANTITY_DECIMAL_PLACES = 6


def up_to_for(pricing_model: str, upper: Decimal | None) -> Decimal | None:
    if upper is None:
        return None
    return upper - STEP if pricing_model == "volume" else upper


def upper_for(pricing_model: str, up_to: Decimal | None) -> Decimal | None:
    if up_to is None:
        return None
    return up_to + STEP if pricing_model == "volume" else up_to


def forwards(apps, schema_editor):
    PriceTier = apps.get_model("pricing", "PriceTier")  # noqa: N806
    db = schema_editor.connection.alias  # the database being migrated, not always the default
    tiers = list(PriceTier.objects.using(db).select_related("price").filter(upper__isnull=False))
    for t in tiers:
        t.up_to = up_to_for(t.price.pricing_model, t.upper)
    PriceTier.objects.using(db).bulk_update(tiers, ["up_to"], batch_size=1000)


def backwards(apps, schema_editor):
    PriceTier = apps.get_model("pricing", "PriceTier")  # noqa: N806
    db = schema_editor.connection.alias
    tiers = list(PriceTier.objects.using(db).select_related("price").order_by("price_id", models.F("up_to").asc(nulls_last=True)))
    previous: dict[int, Decimal] = {}
    for t in tiers:
        t.upper = upper_for(t.price.pricing_model, t.up_to)
        t.lower = previous.get(t.price_id, Decimal("0"))
        if t.upper is not None:
            previous[t.price_id] = t.upper
    PriceTier.objects.using(db).bulk_update(tiers, ["lower", "upper"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [("pricing", "0005_flatter_effective_rate_view")]

    operations = [
        # Constraints on the old columns go first, so that going backwards they come back
        # only once `backwards` has filled the columns in.
        migrations.RemoveConstraint(model_name="pricetier", name="price_tier_unique_lower"),
        migrations.RemoveConstraint(model_name="pricetier", name="price_tier_range"),
        migrations.AddField(
            model_name="pricetier", name="up_to",
            field=models.DecimalField(blank=True, decimal_places=6, max_digits=24, null=True, verbose_name="up to",
                                      help_text="Inclusive: this tier holds quantities up to and including this "
                                                "one; empty = no upper bound (the last tier)."),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField(model_name="pricetier", name="lower"),
        migrations.RemoveField(model_name="pricetier", name="upper"),
        migrations.AlterModelOptions(name="pricetier",
                                     options={"ordering": ["price", models.F("up_to").asc(nulls_last=True)]}),
        migrations.AddConstraint(
            model_name="pricetier",
            constraint=models.UniqueConstraint(fields=("price", "up_to"), name="price_tier_unique_up_to",
                                               nulls_distinct=False,
                                               violation_error_message="Two tiers go up to the same quantity."),
        ),
        migrations.AddConstraint(
            model_name="pricetier",
            constraint=models.CheckConstraint(condition=models.Q(("up_to__isnull", True), ("up_to__gte", 0),
                                                                 _connector="OR"),
                                              name="price_tier_up_to_nonneg",
                                              violation_error_message="A tier's up to cannot be negative."),
        ),
    ]
