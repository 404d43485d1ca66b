
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('credits', '0004_ledger_indexes'),
    ]

    operations = [
        migrations.AddField(
            model_name='autotopupsettings',
            name='rearmed_at',
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        # Existing settings keep their last change time as their re-arm time.
        migrations.RunSQL("UPDATE credits_autotopupsettings SET rearmed_at = updated_at", migrations.RunSQL.noop),
        # Should an organisation already have two auto top-ups open, the newer ones are given
        # up (they were the double charges); the oldest one carries on.
        migrations.RunSQL(
            """
            UPDATE credits_topup t SET status = 'abandoned',
                   last_error = 'Given up: a second automatic top-up was open for this organisation.'
             WHERE t.source = 'auto' AND t.status IN ('pending', 'failed')
               AND EXISTS (SELECT 1 FROM credits_topup o WHERE o.organization_id = t.organization_id
                           AND o.source = 'auto' AND o.status IN ('pending', 'failed') AND o.id < t.id)
            """,
            migrations.RunSQL.noop,
        ),
        migrations.AddConstraint(
            model_name='topup',
            constraint=models.UniqueConstraint(condition=models.Q(('source', 'auto'), ('status__in', ['pending', 'failed'])), fields=('organization',), name='credits_topup_one_auto_in_flight'),
        ),
    ]
