"""The database itself refuses UPDATE and DELETE on ledger entries, whoever asks (the
ORM, raw SQL, the admin, a psql session). Corrections are reversal entries.

PostgreSQL raises SQLSTATE 23001 (restrict_violation), which Django surfaces as an
IntegrityError. TRUNCATE is left to the table owner (the
test runner's flush uses it); the application's database role should not own tables.
"""

from django.db import migrations

PG_FORWARD = """
CREATE FUNCTION credits_ledgerentry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'credits_ledgerentry is append-only: %% refused; post a reversal entry instead', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER credits_ledgerentry_append_only
    BEFORE UPDATE OR DELETE ON credits_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION credits_ledgerentry_append_only();
"""
PG_BACKWARD = """
DROP TRIGGER IF EXISTS credits_ledgerentry_append_only ON credits_ledgerentry;
DROP FUNCTION IF EXISTS credits_ledgerentry_append_only();
"""
def forward(apps, schema_editor):
    schema_editor.execute(PG_FORWARD)


def backward(apps, schema_editor):
    schema_editor.execute(PG_BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("credits", "0001_initial")]
    operations = [migrations.RunPython(forward, backward, elidable=False)]
