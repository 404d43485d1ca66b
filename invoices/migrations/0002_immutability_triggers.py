"""The database refuses changes to issued invoices, their lines and credit notes.

An invoice leaves `draft` when it is finalized; from then on its money columns, number,
period, currency and snapshots are fixed, it cannot be deleted, and its lines can be
neither added, changed nor removed. Status, payment progress, the PDF and the email
stamp may still move. Credit notes and their lines are never changed or deleted.
"""

from django.db import migrations

FROZEN = [
    "organization_id", "period_start", "period_end", "number", "currency", "is_statement", "subtotal",
    "discount_total", "tax_total", "total", "credit_applied", "balance_forward", "amount_due", "tax_note",
    "billing_details", "seller_details", "issued_at", "due_at",
]
CN_FROZEN = ["invoice_id", "organization_id", "number", "currency", "reason", "subtotal", "tax_total", "total",
             "issued_at", "billing_details"]
MESSAGE = "invoice % is issued and cannot be changed; issue a credit note"

PG_FORWARD = f"""
CREATE OR REPLACE FUNCTION invoices_refuse_issued_invoice_change() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    IF OLD.status <> 'draft' THEN
      RAISE EXCEPTION 'invoice % is issued and cannot be deleted', OLD.id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN OLD;
  END IF;
  IF OLD.status <> 'draft' AND ({' OR '.join(f'NEW.{c} IS DISTINCT FROM OLD.{c}' for c in FROZEN)}) THEN
    RAISE EXCEPTION '{MESSAGE}', OLD.id USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF OLD.status <> 'draft' AND NEW.status = 'draft' THEN
    RAISE EXCEPTION 'invoice % is issued and cannot return to draft', OLD.id USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER invoices_invoice_issued_immutable BEFORE UPDATE OR DELETE ON invoices_invoice
  FOR EACH ROW EXECUTE FUNCTION invoices_refuse_issued_invoice_change();

CREATE OR REPLACE FUNCTION invoices_refuse_issued_line_change() RETURNS trigger AS $$
DECLARE parent_status text;
BEGIN
  SELECT status INTO parent_status FROM invoices_invoice
    WHERE id = CASE WHEN TG_OP = 'INSERT' THEN NEW.invoice_id ELSE OLD.invoice_id END;
  IF parent_status IS NOT NULL AND parent_status <> 'draft' THEN
    RAISE EXCEPTION 'lines of an issued invoice cannot be changed; issue a credit note'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER invoices_line_issued_immutable BEFORE INSERT OR UPDATE OR DELETE ON invoices_invoiceline
  FOR EACH ROW EXECUTE FUNCTION invoices_refuse_issued_line_change();

CREATE OR REPLACE FUNCTION invoices_refuse_credit_note_change() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'credit notes cannot be deleted' USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF {' OR '.join(f'NEW.{c} IS DISTINCT FROM OLD.{c}' for c in CN_FROZEN)} THEN
    RAISE EXCEPTION 'credit notes cannot be changed' USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION invoices_refuse_credit_note_line_change() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'credit notes cannot be changed' USING ERRCODE = 'integrity_constraint_violation';
END $$ LANGUAGE plpgsql;
CREATE TRIGGER invoices_credit_note_immutable BEFORE UPDATE OR DELETE ON invoices_creditnote
  FOR EACH ROW EXECUTE FUNCTION invoices_refuse_credit_note_change();
CREATE TRIGGER invoices_credit_note_line_immutable BEFORE UPDATE OR DELETE ON invoices_creditnoteline
  FOR EACH ROW EXECUTE FUNCTION invoices_refuse_credit_note_line_change();
"""

PG_REVERSE = """
DROP TRIGGER IF EXISTS invoices_invoice_issued_immutable ON invoices_invoice;
DROP TRIGGER IF EXISTS invoices_line_issued_immutable ON invoices_invoiceline;
DROP TRIGGER IF EXISTS invoices_credit_note_immutable ON invoices_creditnote;
DROP TRIGGER IF EXISTS invoices_credit_note_line_immutable ON invoices_creditnoteline;
DROP FUNCTION IF EXISTS invoices_refuse_issued_invoice_change();
DROP FUNCTION IF EXISTS invoices_refuse_issued_line_change();
DROP FUNCTION IF EXISTS invoices_refuse_credit_note_change();
DROP FUNCTION IF EXISTS invoices_refuse_credit_note_line_change();
"""

def forward(apps, schema_editor):
    schema_editor.execute(PG_FORWARD, params=None)


def reverse(apps, schema_editor):
    schema_editor.execute(PG_REVERSE, params=None)


class Migration(migrations.Migration):
    dependencies = [("invoices", "0001_initial")]
    operations = [migrations.RunPython(forward, reverse)]
