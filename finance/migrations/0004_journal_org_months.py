"""The revenue report's sums per organisation, currency and month of the built journal
days (usage recognised, the ledger's top-ups), backfilled for every day built before
this migration by the statement `journal_build_day` runs for its day
(`finance.journal.ORG_MONTH_SQL`, spelled out here as it is today)."""

import django.db.models.deletion
from django.db import migrations, models

import core.money

BACKFILL = """
INSERT INTO finance_journalorgmonth (organization_id, currency, month, usage, topups)
SELECT org, currency, month, SUM(u), SUM(t) FROM (
    SELECT e.organization_id AS org, e.currency, date_trunc('month', e.date)::date AS month,
           -SUM(l.amount) AS u, 0 AS t
    FROM finance_journalline l JOIN finance_journalentry e ON e.id = l.entry_id
    WHERE e.movement = 'usage' AND l.organization_id IS NULL
    GROUP BY 1, 2, 3
    UNION ALL
    SELECT organization_id, currency, date_trunc('month', created_at AT TIME ZONE 'UTC')::date, 0, SUM(amount)
    FROM credits_ledgerentry, (SELECT MIN(date) AS d0, MAX(date) AS d1 FROM finance_journalday) b
    WHERE kind = 'topup' AND created_at >= (b.d0::timestamp AT TIME ZONE 'UTC')
      AND created_at < ((b.d1 + 1)::timestamp AT TIME ZONE 'UTC')
    GROUP BY 1, 2, 3
) x
WHERE org IS NOT NULL
GROUP BY 1, 2, 3
"""


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0004_user_time_zone'),
        ('credits', '0007_zero_balance_ladder'),
        ('finance', '0003_journal_day_totals'),
    ]

    operations = [
        migrations.CreateModel(
            name='JournalOrgMonth',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('currency', models.CharField(max_length=3, validators=[core.money.validate_currency_field])),
                ('month', models.DateField(help_text="The month's first day.")),
                ('usage', models.DecimalField(decimal_places=12, help_text="Usage recognised on the month's built days (revenue positive).", max_digits=30)),
                ('topups', models.DecimalField(decimal_places=12, help_text="Top-ups in the credit ledger on the month's built days.", max_digits=30)),
                ('organization', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.organization')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('month', 'currency', 'organization'), name='finance_orgmonth_uniq')],
            },
        ),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
    ]
