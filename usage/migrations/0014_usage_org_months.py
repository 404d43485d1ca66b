"""`usage_usageorgmonth`: the daily rollup summed per organisation, currency, product and
calendar month, for the finance reports (revenue's split of a month's usage over
products), kept like `usage_usagedaytotal` (migration 0012) by three statement triggers
on `usage_usagedaily` (insert, update, delete, each with its transition tables: one
grouped upsert per statement), and backfilled from the rows there are. Every writer of
the rollup keeps it, in its own statement and transaction; the upsert orders its keys,
so two transactions adding to the same months lock them in the same order."""

import django.db.models.deletion
from django.db import migrations, models

import core.money

_UPSERT = """
        INSERT INTO usage_usageorgmonth (month, currency, organization_id, product_id, rows, minutes, amount)
        SELECT date_trunc('month', day)::date, currency, organization_id, product_id, SUM(n), SUM(minutes), SUM(amount)
        FROM ({rows}) d GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (month, currency, organization_id, product_id) DO UPDATE
        SET rows = usage_usageorgmonth.rows + EXCLUDED.rows, minutes = usage_usageorgmonth.minutes + EXCLUDED.minutes,
            amount = usage_usageorgmonth.amount + EXCLUDED.amount;"""
_NEW = "SELECT day, currency, organization_id, product_id, 1 AS n, minutes, amount FROM new_rows"
_OLD = "SELECT day, currency, organization_id, product_id, -1 AS n, -minutes AS minutes, -amount AS amount FROM old_rows"
APPLY = f"""
CREATE FUNCTION usage_org_months_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Each branch names only the transition tables its trigger has.
    IF TG_OP = 'INSERT' THEN{_UPSERT.format(rows=_NEW)}
    ELSIF TG_OP = 'UPDATE' THEN{_UPSERT.format(rows=_NEW + " UNION ALL " + _OLD)}
    ELSE{_UPSERT.format(rows=_OLD)}
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER usage_daily_org_months_insert AFTER INSERT ON usage_usagedaily
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_org_months_apply();
CREATE TRIGGER usage_daily_org_months_update AFTER UPDATE ON usage_usagedaily
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_org_months_apply();
CREATE TRIGGER usage_daily_org_months_delete AFTER DELETE ON usage_usagedaily
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_org_months_apply();
"""
UNAPPLY = """
DROP TRIGGER usage_daily_org_months_insert ON usage_usagedaily;
DROP TRIGGER usage_daily_org_months_update ON usage_usagedaily;
DROP TRIGGER usage_daily_org_months_delete ON usage_usagedaily;
DROP FUNCTION usage_org_months_apply();
"""
# Also `benchmark reports`' statement for its copy (finance/benchmarks/reports.py).
BACKFILL = """
INSERT INTO usage_usageorgmonth (month, currency, organization_id, product_id, rows, minutes, amount)
SELECT date_trunc('month', day)::date, currency, organization_id, product_id, COUNT(*), SUM(minutes), SUM(amount)
FROM usage_usagedaily GROUP BY 1, 2, 3, 4
"""


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0004_user_time_zone'),
        ('pricing', '0006_tiers_up_to_inclusive'),
        ('usage', '0013_resource_labels_db_default'),
    ]

    operations = [
        migrations.CreateModel(
            name='UsageOrgMonth',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('currency', models.CharField(max_length=3, validators=[core.money.validate_currency_field])),
                ('month', models.DateField(help_text="The month's first day.")),
                ('rows', models.BigIntegerField(default=0, help_text='How many rollup rows it sums (0: none left).')),
                ('minutes', models.BigIntegerField(default=0)),
                ('amount', models.DecimalField(decimal_places=12, max_digits=30)),
                ('organization', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.organization')),
                ('product', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='pricing.product')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('month', 'currency', 'organization', 'product'), name='usage_org_month_uniq')],
            },
        ),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(APPLY, reverse_sql=UNAPPLY),
    ]
