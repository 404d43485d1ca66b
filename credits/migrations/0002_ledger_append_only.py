"""The database itself refuses UPDATE and DELETE on ledger entries, whoever asks (the
ORM, raw SQL, the admin, a psql session). Corrections are reversal entries.

PostgreSQL raises SQLSTATE 23001 (restrict_violation), which Django surfaces as an
IntegrityError; SQLite aborts the statement. TRUNCATE is left to the table owner (the
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
SQLITE_FORWARD = [
    """CREATE TRIGGER credits_ledgerentry_no_update BEFORE UPDATE ON credits_ledgerentry
       BEGIN SELECT RAISE(ABORT, 'credits_ledgerentry is append-only: UPDATE refused; post a reversal entry instead'); END""",
    """CREATE TRIGGER credits_ledgerentry_no_delete BEFORE DELETE ON credits_ledgerentry
       BEGIN SELECT RAISE(ABORT, 'credits_ledgerentry is append-only: DELETE refused; post a reversal entry instead'); END""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS credits_ledgerentry_no_update",
    "DROP TRIGGER IF EXISTS credits_ledgerentry_no_delete",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_FORWARD)
    elif schema_editor.connection.vendor == "sqlite":
        for sql in SQLITE_FORWARD:
            schema_editor.execute(sql)
    else:
        raise NotImplementedError(f"append-only ledger trigger for {schema_editor.connection.vendor}")


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD)
    elif schema_editor.connection.vendor == "sqlite":
        for sql in SQLITE_BACKWARD:
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("credits", "0001_initial")]
    operations = [migrations.RunPython(forward, backward, elidable=False)]
