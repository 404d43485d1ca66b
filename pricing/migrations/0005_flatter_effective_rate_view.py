"""The effective-rate view without top-level CTEs, so PostgreSQL can push the caller's
join keys into it instead of computing every organisation's rows."""

from django.db import migrations

from pricing.sql import drop_view, recreate_view


def forwards(apps, schema_editor):
    recreate_view(schema_editor)


def backwards(apps, schema_editor):
    drop_view(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("pricing", "0004_effective_rate_model")]

    operations = [migrations.RunPython(forwards, backwards)]
