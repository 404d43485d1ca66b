"""The journal's daily totals per currency, account and movement, backfilled for every
day built before this migration (the same statement `journal_build_day` runs per day)."""

import core.money
import django.db.models.deletion
from django.db import migrations, models


BACKFILL = """
INSERT INTO finance_journaldaytotal (date, currency, account_id, movement, amount, lines)
SELECT e.date, e.currency, l.account_id, e.movement, SUM(l.amount), COUNT(*)
FROM finance_journalline l JOIN finance_journalentry e ON e.id = l.entry_id
GROUP BY 1, 2, 3, 4
"""


class Migration(migrations.Migration):

    dependencies = [
        ('finance', '0002_seed_chart_of_accounts'),
    ]

    operations = [
        migrations.CreateModel(
            name='JournalDayTotal',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('date', models.DateField()),
                ('currency', models.CharField(max_length=3, validators=[core.money.validate_currency_field])),
                ('movement', models.CharField(choices=[('topup', 'Top-up received'), ('usage', 'Usage consumed (per organisation and day)'), ('promo_grant', 'Promotional credit granted'), ('promo_expiry', 'Promotional credit expired'), ('adjustment', 'Staff credit adjustment'), ('invoice', 'Invoice finalised'), ('invoice_void', 'Invoice voided'), ('credit_note', 'Credit note'), ('invoice_payment', 'Invoice payment received'), ('refund', 'Refund or dispute lost'), ('write_off', 'Invoice written off'), ('other', 'Other ledger movement')], max_length=20)),
                ('amount', models.DecimalField(decimal_places=12, help_text='Sum of the lines: debit positive, credit negative; whole minor units.', max_digits=30)),
                ('lines', models.PositiveIntegerField(help_text='How many lines it sums.')),
                ('account', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='finance.account')),
            ],
            options={
                'indexes': [models.Index(fields=['account', 'currency', 'date'], name='finance_daytotal_account')],
                'constraints': [models.UniqueConstraint(fields=('date', 'currency', 'account', 'movement'), name='finance_daytotal_uniq')],
            },
        ),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
    ]
