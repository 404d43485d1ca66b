import django.db.models.deletion
from django.db import migrations, models

from usage.event_partitions import convert, unconvert


def forwards(apps, schema_editor):
    convert(schema_editor)


def backwards(apps, schema_editor):
    unconvert(schema_editor)


class Migration(migrations.Migration):
    """PostgreSQL: events in daily partitions by event time with retention, and the dedup
    window's keys in `usage_eventkey` (see usage.event_partitions). Works on a table with
    rows: they are copied, the id sequence continues, recent ids become keys."""

    dependencies = [("usage", "0005_events_hot_path")]

    operations = [
        # A partitioned table has no unique `id` for the history's foreign key to reference.
        migrations.AlterField(
            model_name="stateinterval",
            name="event",
            field=models.ForeignKey(blank=True, db_constraint=False, null=True,
                                    on_delete=django.db.models.deletion.SET_NULL, related_name="+",
                                    to="usage.usageevent"),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name="usageevent", name="event_id",
                                      field=models.CharField(max_length=200)),
                migrations.CreateModel(
                    name="EventKey",
                    fields=[
                        ("pk", models.CompositePrimaryKey("digest", "bucket", blank=True, editable=False,
                                                          primary_key=True, serialize=False)),
                        ("digest", models.UUIDField()),
                        ("bucket", models.IntegerField()),
                    ],
                    options={"db_table": "usage_eventkey"},
                ),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]
