"""A line moved onto an issued invoice is refused too.

0002's row trigger looked only at where an updated line came from (OLD.invoice_id), so
`UPDATE invoices_invoiceline SET invoice_id = <issued>` on a draft's line went through.
The trigger now checks both sides of an UPDATE. Still one row trigger: a statement
trigger over transition tables was tried and measured slower on the monthly run
(96 and 135 invoices/s against 179 and 212 with the row trigger, alternating runs).
"""

from django.db import migrations

MESSAGE = "lines of an issued invoice cannot be changed; issue a credit note"


def _function(ids: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION invoices_refuse_issued_line_change() RETURNS trigger AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM invoices_invoice WHERE id IN ({ids}) AND status <> 'draft') THEN
    RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
"""


# INSERT has no OLD row and DELETE no NEW one; plpgsql reads NULL for a missing record's field
# only through a CASE on TG_OP, so each side is picked by the operation.
FORWARD = _function(
    "CASE WHEN TG_OP = 'INSERT' THEN NEW.invoice_id ELSE OLD.invoice_id END, "
    "CASE WHEN TG_OP = 'UPDATE' THEN NEW.invoice_id END"
)
REVERSE = _function("CASE WHEN TG_OP = 'INSERT' THEN NEW.invoice_id ELSE OLD.invoice_id END")


def forward(apps, schema_editor):
    schema_editor.execute(FORWARD, params=None)


def reverse(apps, schema_editor):
    schema_editor.execute(REVERSE, params=None)


class Migration(migrations.Migration):
    dependencies = [("invoices", "0004_credit_notes_per_line")]
    operations = [migrations.RunPython(forward, reverse)]
