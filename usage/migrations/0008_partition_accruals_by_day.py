from django.db import migrations

from usage.partitions import partition_accruals


def forwards(apps, schema_editor):
    partition_accruals(schema_editor)


class Migration(migrations.Migration):
    """PostgreSQL: accruals in daily partitions, dropped whole past the retention (see
    usage.partitions); the BRIN index the batched delete used goes."""

    dependencies = [("usage", "0007_rated_spans_and_accruals")]

    operations = [
        migrations.RemoveIndex(model_name="usageaccrual", name="usage_accrual_start_brin"),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
