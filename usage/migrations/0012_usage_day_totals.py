"""`usage_usagedaytotal`: the daily rollup summed per day, currency, product, state and
price, kept by three statement triggers on `usage_usagedaily` (insert, update, delete,
each with its transition tables: one grouped upsert per statement, whatever the number
of rows), and backfilled from the rows there are. Every writer of the rollup (metering's
upsert, imports, seeders, tests) keeps it, in its own statement and transaction.

The upsert orders its keys, so two transactions that add to the same totals lock them in
the same order (the rollup's own upsert already serialises such transactions on the
`usage_usagedaily` rows they share)."""

import core.money
import django.db.models.deletion
from django.db import migrations, models


APPLY = """
CREATE FUNCTION usage_day_totals_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Each branch names only the transition tables its trigger has.
    IF TG_OP = 'INSERT' THEN
        INSERT INTO usage_usagedaytotal (day, currency, product_id, state, price_id, minutes, amount)
        SELECT day, currency, product_id, state, price_id, SUM(minutes), SUM(amount)
        FROM new_rows d GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (day, currency, product_id, state, price_id) DO UPDATE
        SET minutes = usage_usagedaytotal.minutes + EXCLUDED.minutes,
            amount = usage_usagedaytotal.amount + EXCLUDED.amount;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO usage_usagedaytotal (day, currency, product_id, state, price_id, minutes, amount)
        SELECT day, currency, product_id, state, price_id, SUM(minutes), SUM(amount)
        FROM (SELECT day, currency, product_id, state, price_id, minutes, amount FROM new_rows
              UNION ALL SELECT day, currency, product_id, state, price_id, -minutes, -amount FROM old_rows) d GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (day, currency, product_id, state, price_id) DO UPDATE
        SET minutes = usage_usagedaytotal.minutes + EXCLUDED.minutes,
            amount = usage_usagedaytotal.amount + EXCLUDED.amount;
    ELSE
        INSERT INTO usage_usagedaytotal (day, currency, product_id, state, price_id, minutes, amount)
        SELECT day, currency, product_id, state, price_id, SUM(minutes), SUM(amount)
        FROM (SELECT day, currency, product_id, state, price_id, -minutes AS minutes, -amount AS amount FROM old_rows) d GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (day, currency, product_id, state, price_id) DO UPDATE
        SET minutes = usage_usagedaytotal.minutes + EXCLUDED.minutes,
            amount = usage_usagedaytotal.amount + EXCLUDED.amount;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER usage_daily_day_totals_insert AFTER INSERT ON usage_usagedaily
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_day_totals_apply();
CREATE TRIGGER usage_daily_day_totals_update AFTER UPDATE ON usage_usagedaily
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_day_totals_apply();
CREATE TRIGGER usage_daily_day_totals_delete AFTER DELETE ON usage_usagedaily
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_day_totals_apply();
"""
UNAPPLY = """
DROP TRIGGER usage_daily_day_totals_insert ON usage_usagedaily;
DROP TRIGGER usage_daily_day_totals_update ON usage_usagedaily;
DROP TRIGGER usage_daily_day_totals_delete ON usage_usagedaily;
DROP FUNCTION usage_day_totals_apply();
"""
# Also `benchmark reports`' statement for its copy (finance/benchmarks/reports.py).
BACKFILL = """
INSERT INTO usage_usagedaytotal (day, currency, product_id, state, price_id, minutes, amount)
SELECT day, currency, product_id, state, price_id, SUM(minutes), SUM(amount)
FROM usage_usagedaily GROUP BY 1, 2, 3, 4, 5
"""


class Migration(migrations.Migration):

    dependencies = [
        ('pricing', '0006_tiers_up_to_inclusive'),
        ('usage', '0011_projects_and_labels'),
    ]

    operations = [
        migrations.CreateModel(
            name='UsageDayTotal',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('currency', models.CharField(max_length=3, validators=[core.money.validate_currency_field])),
                ('state', models.CharField(choices=[('provisioning', 'Provisioning'), ('running', 'Running'), ('stopping', 'Stopping'), ('stopped', 'Stopped'), ('hibernating', 'Hibernating'), ('hibernated', 'Hibernated'), ('starting', 'Starting'), ('error', 'Error'), ('deleted', 'Deleted')], max_length=12)),
                ('price_id', models.BigIntegerField(default=0, help_text='0: no price row (imported history).')),
                ('minutes', models.BigIntegerField(default=0)),
                ('amount', models.DecimalField(decimal_places=12, max_digits=30)),
                ('product', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='pricing.product')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('day', 'currency', 'product', 'state', 'price_id'), name='usage_day_total_uniq')],
            },
        ),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(APPLY, reverse_sql=UNAPPLY),
    ]
