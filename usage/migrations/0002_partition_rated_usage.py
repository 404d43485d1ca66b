from django.db import migrations

from usage.partitions import partition_table


def forwards(apps, schema_editor):
    partition_table(schema_editor)


class Migration(migrations.Migration):
    """PostgreSQL: per-minute rated usage in daily partitions (see usage.partitions)."""

    dependencies = [("usage", "0001_initial")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
