"""Overlapping prices and contracts refused by PostgreSQL itself, and the effective-rate view.

The exclusion constraints need btree_gist (equality on scalar columns inside a GiST
index)."""

from django.db import migrations

from pricing.sql import drop_view, recreate_view

EXCLUSIONS = [
    ("pricing_price", "price_no_overlap",
     "product_id WITH =, currency WITH =, state WITH =, unit WITH =, tstzrange(valid_from, valid_to, '[)') WITH &&"),
    ("pricing_contract", "contract_no_overlap",
     "organization_id WITH =, tstzrange(valid_from, valid_to, '[)') WITH &&"),
]


def forwards(apps, schema_editor):
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    for table, name, spec in EXCLUSIONS:
        schema_editor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} EXCLUDE USING gist ({spec})")
    recreate_view(schema_editor)


def backwards(apps, schema_editor):
    drop_view(schema_editor)
    for table, name, _spec in EXCLUSIONS:
        schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("pricing", "0001_initial"), ("accounts", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
