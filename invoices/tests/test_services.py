"""Payments, carry-forward, statements, voids and credit notes."""

from decimal import Decimal

import pytest

from accounts.models import AuditLog, BillingMode
from accounts.tests.factories import OrganizationFactory
from core.errors import Conflict, DomainError
from invoices import engine, services
from invoices.tests.helpers import hourly_rows, utc
from invoices.tests.test_pipeline import run_month

pytestmark = pytest.mark.django_db


@pytest.fixture
def postpaid(fixture_pipeline, ledger):
    org = OrganizationFactory(billing_mode=BillingMode.POSTPAID, payment_terms_days=14)
    fixture_pipeline[org.pk] = {"usage": hourly_rows(start=utc(2026, 10, 1), end=utc(2026, 12, 1), rate="0.25")}
    ledger.draw(org, Decimal("366.00"))  # October's 186.00 and November's 180.00, as metering drew them
    return org


def test_partial_payments_add_up_and_the_last_one_marks_the_invoice_paid(postpaid):
    invoice = run_month(postpaid)
    assert invoice.amount_due == Decimal("186.00")
    services.invoice_record_payment(invoice=invoice, amount=Decimal("100.00"), reference="pay_1")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("open", Decimal("100.00"))
    services.invoice_record_payment(invoice=invoice, amount=Decimal("86.00"), reference="pay_2")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", Decimal("186.00"))


def test_recording_the_same_payment_reference_twice_counts_once(postpaid):
    invoice = run_month(postpaid)
    first = services.invoice_record_payment(invoice=invoice, amount=Decimal("50.00"), reference="pi_123")
    again = services.invoice_record_payment(invoice=invoice, amount=Decimal("50.00"), reference="pi_123")
    invoice.refresh_from_db()
    assert first.pk == again.pk and invoice.amount_paid == Decimal("50.00")
    with pytest.raises(Conflict):
        services.invoice_record_payment(invoice=invoice, amount=Decimal("60.00"), reference="pi_123")


def test_overpaying_an_invoice_is_refused(postpaid):
    invoice = run_month(postpaid)
    with pytest.raises(Conflict):
        services.invoice_record_payment(invoice=invoice, amount=Decimal("186.01"), reference="too_much")


def test_an_unpaid_balance_is_carried_to_the_next_invoice_and_settled_with_it(postpaid):
    october = run_month(postpaid)
    services.invoice_record_payment(invoice=october, amount=Decimal("86.00"), reference="part")
    november = run_month(postpaid, period=engine.period_for("2026-11"), now=utc(2026, 12, 1, 2))
    assert (november.total, november.balance_forward, november.amount_due) == (
        Decimal("180.00"), Decimal("100.00"), Decimal("280.00"))
    october.refresh_from_db()
    assert october.carried_to_id == november.pk
    with pytest.raises(Conflict):
        services.invoice_record_payment(invoice=october, amount=Decimal("100.00"), reference="late")
    services.invoice_record_payment(invoice=november, amount=Decimal("280.00"), reference="all")
    october.refresh_from_db()
    assert october.status == "paid"


# --- reversing a payment (a refund, a lost dispute) ------------------------------------


def test_reversing_part_of_a_payment_opens_the_paid_invoice_again_and_the_ledger_lacks_it_once(postpaid, ledger):
    invoice = run_month(postpaid)
    services.invoice_record_payment(invoice=invoice, amount=Decimal("186.00"), reference="pay")
    paid_balance = ledger.balance(postpaid)
    reversal = services.invoice_reverse_payment(invoice=invoice, amount=Decimal("36.00"), reference="refund:1",
                                                payment_reference="pay", reason="goodwill")
    again = services.invoice_reverse_payment(invoice=invoice, amount=Decimal("36.00"), reference="refund:1",
                                             payment_reference="pay")
    invoice.refresh_from_db()
    assert again.pk == reversal.pk
    assert (invoice.status, invoice.amount_paid, invoice.paid_at) == ("open", Decimal("150.00"), None)
    assert invoice.amount_remaining == Decimal("36.00")
    assert ledger.balance(postpaid) == paid_balance - Decimal("36.00")
    assert ledger.entries(postpaid)[-1] == ("refund", Decimal("-36.00"), f"invoice_payment_reversal:{reversal.pk}")
    assert AuditLog.objects.filter(action="invoice.payment_reversed", reason="goodwill").count() == 1
    # What is owed again can be paid again, and the invoice is paid again.
    services.invoice_record_payment(invoice=invoice, amount=Decimal("36.00"), reference="pay_again")
    invoice.refresh_from_db()
    assert invoice.status == "paid" and ledger.balance(postpaid) == paid_balance


def test_reversals_never_exceed_the_payment_and_a_reference_names_one_reversal(postpaid):
    invoice = run_month(postpaid)
    services.invoice_record_payment(invoice=invoice, amount=Decimal("100.00"), reference="pay")
    services.invoice_reverse_payment(invoice=invoice, amount=Decimal("60.00"), reference="r1",
                                     payment_reference="pay")
    with pytest.raises(Conflict):  # 40.00 is left of that payment
        services.invoice_reverse_payment(invoice=invoice, amount=Decimal("40.01"), reference="r2",
                                         payment_reference="pay")
    with pytest.raises(Conflict):  # the same reference for another amount
        services.invoice_reverse_payment(invoice=invoice, amount=Decimal("10.00"), reference="r1",
                                         payment_reference="pay")
    with pytest.raises(DomainError):
        services.invoice_reverse_payment(invoice=invoice, amount=Decimal("1.00"), reference="r3",
                                         payment_reference="no-such-payment")
    with pytest.raises(DomainError):
        services.invoice_reverse_payment(invoice=invoice, amount=Decimal("0.001"), reference="r4",
                                         payment_reference="pay")
    services.invoice_reverse_payment(invoice=invoice, amount=Decimal("40.00"), reference="r2",
                                     payment_reference="pay")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("open", Decimal("0.00"))
    assert invoice.payment_reversals.count() == 2


def test_reversing_the_payment_of_a_carrying_invoice_opens_the_invoices_it_settled(postpaid):
    october = run_month(postpaid)
    november = run_month(postpaid, period=engine.period_for("2026-11"), now=utc(2026, 12, 1, 2))
    services.invoice_record_payment(invoice=november, amount=Decimal("366.00"), reference="all")
    october.refresh_from_db()
    assert october.status == "paid"
    services.invoice_reverse_payment(invoice=november, amount=Decimal("366.00"), reference="chargeback",
                                     payment_reference="all")
    october.refresh_from_db()
    november.refresh_from_db()
    assert (november.status, october.status, october.paid_at) == ("open", "open", None)
    assert october.carried_to_id == november.pk  # still owed through November


def test_a_prepaid_statement_owes_nothing_while_credit_covers_it(fixture_pipeline, ledger):
    org = OrganizationFactory(billing_mode=BillingMode.PREPAID)
    fixture_pipeline[org.pk] = {"usage": hourly_rows(start=utc(2026, 10, 1), end=utc(2026, 10, 3), rate="1.00")}
    ledger.set(org, Decimal("500.00"))
    statement = run_month(org)
    assert statement.is_statement
    assert (statement.total, statement.credit_applied, statement.amount_due) == (
        Decimal("48.00"), Decimal("48.00"), Decimal(0))
    assert statement.status == "paid"
    assert ledger.entries(org) == []  # metering drew the usage already; nothing else to draw


def test_a_prepaid_statement_is_due_when_the_balance_went_negative(fixture_pipeline, ledger):
    org = OrganizationFactory(billing_mode=BillingMode.PREPAID)
    fixture_pipeline[org.pk] = {"usage": hourly_rows(start=utc(2026, 10, 1), end=utc(2026, 10, 3), rate="1.00")}
    ledger.set(org, Decimal("-12.00"))
    statement = run_month(org)
    assert (statement.credit_applied, statement.amount_due, statement.status) == (
        Decimal("36.00"), Decimal("12.00"), "open")
    services.invoice_record_payment(invoice=statement, amount=Decimal("12.00"), reference="pay")
    assert ledger.balance(org) == Decimal(0)  # paying the statement restores the balance


def test_voiding_needs_a_reason_and_refuses_an_invoice_with_payments(postpaid, admin_user):
    invoice = run_month(postpaid)
    with pytest.raises(Exception):
        services.invoice_void(invoice=invoice, reason=" ")
    voided = services.invoice_void(invoice=invoice, reason="Billed the wrong customer", actor=admin_user)
    assert voided.status == "void" and voided.number is not None
    assert AuditLog.objects.filter(action="invoice.voided", reason="Billed the wrong customer").exists()


def test_a_credit_note_reduces_what_is_owed_and_gets_its_own_number(postpaid, ledger):
    invoice = run_month(postpaid)
    note = services.credit_note_create(invoice=invoice, reason="Outage on 3 October", amount=Decimal("36.00"))
    assert (note.number, note.total) == ("CN-2026-000001", Decimal("36.00"))
    services.invoice_record_payment(invoice=invoice, amount=Decimal("150.00"), reference="rest")
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert ledger.balance(postpaid) == Decimal("-180.00")  # only November's usage is still owed
    with pytest.raises(Conflict):
        services.credit_note_create(invoice=invoice, reason="again", amount=Decimal("150.01"))


def test_a_prepaid_statements_tax_is_drawn_from_credit_at_finalization(fixture_pipeline, ledger):
    from invoices.models import TaxRate

    TaxRate.objects.create(country="NL", rate=Decimal("21"), valid_from=utc(2020, 1, 1).date())
    org = OrganizationFactory(billing_mode=BillingMode.PREPAID, country="NL", currency="EUR")
    fixture_pipeline[org.pk] = {"usage": hourly_rows(start=utc(2026, 10, 1), end=utc(2026, 10, 2), rate="1.00")}
    ledger.set(org, Decimal("100.00"))
    statement = run_month(org)
    # 24.00 of usage was drawn by metering; the 5.04 of VAT is drawn now.
    assert (statement.total, statement.amount_due) == (Decimal("29.04"), Decimal(0))
    assert ledger.entries(org) == [("invoice_settlement", Decimal("-5.04"), f"invoice:{statement.pk}")]
    # A settled statement is corrected by a credit note, which goes back to credit.
    note = services.credit_note_create(invoice=statement, reason="Outage credit")
    assert note.total == Decimal("29.04")
    assert ledger.entries(org)[-1] == ("adjustment", Decimal("29.04"), f"credit_note:{note.pk}")


def test_a_postpaid_invoice_is_covered_by_credit_first(fixture_pipeline, ledger):
    org = OrganizationFactory(billing_mode=BillingMode.POSTPAID)
    fixture_pipeline[org.pk] = {"usage": hourly_rows(start=utc(2026, 10, 1), end=utc(2026, 11, 1), rate="0.25")}
    ledger.set(org, Decimal("50.00"))  # promotional credit
    ledger.draw(org, Decimal("186.00"))
    invoice = run_month(org)
    assert (invoice.total, invoice.credit_applied, invoice.amount_due) == (
        Decimal("186.00"), Decimal("50.00"), Decimal("136.00"))
    services.invoice_record_payment(invoice=invoice, amount=Decimal("136.00"), reference="pay")
    assert ledger.balance(org) == Decimal(0)


@pytest.fixture
def issue_october(fixture_pipeline, ledger, django_capture_on_commit_callbacks):
    """Bill October for a postpaid organisation with the given PDF and email switches,
    running what is left for after commit (eager Celery: the PDF and email tasks)."""

    def issue(**switches):
        org = OrganizationFactory(billing_mode=BillingMode.POSTPAID, billing_email="ap@example.com")
        fixture_pipeline[org.pk] = {"usage": hourly_rows(start=utc(2026, 10, 1), end=utc(2026, 10, 2), rate="1.00")}
        with django_capture_on_commit_callbacks(execute=True):
            run, _ = engine.invoice_run_start(period=engine.period_for("2026-10"), now=utc(2026, 11, 1, 2),
                                              dispatch=False)
            engine.invoice_organization(run_id=run.pk, organization_id=org.pk, now=utc(2026, 11, 1, 2), **switches)
        return org.invoices.get()

    return issue


def test_an_issued_invoice_is_emailed_once_with_its_pdf_after_commit(issue_october, mailoutbox):
    invoice = issue_october(render_pdf=True, send_email=True)
    [mail] = mailoutbox
    assert mail.to == ["ap@example.com"] and invoice.number in mail.subject
    [(name, content, mimetype)] = mail.attachments
    assert (name, mimetype) == (f"{invoice.number}.pdf", "application/pdf") and content.startswith(b"%PDF")
    assert invoice.pdf and invoice.emailed_at is not None
    from invoices.rendering import invoice_send_email

    assert invoice_send_email(invoice_id=invoice.pk) is False  # a second run sends nothing


def test_emails_off_still_renders_the_pdf(issue_october, mailoutbox):
    invoice = issue_october(render_pdf=True, send_email=False)
    assert invoice.pdf and invoice.emailed_at is None
    assert mailoutbox == []


def test_pdf_rendering_off_still_emails_the_invoice_with_a_pdf_rendered_for_it(issue_october, mailoutbox):
    invoice = issue_october(render_pdf=False, send_email=True)
    [mail] = mailoutbox
    [(name, _content, _mimetype)] = mail.attachments
    assert name == f"{invoice.number}.pdf" and invoice.emailed_at is not None


def test_a_backfill_renders_and_sends_nothing(issue_october, mailoutbox):
    invoice = issue_october(render_pdf=False, send_email=False)
    assert invoice.number and not invoice.pdf and mailoutbox == []


def test_console_actions_need_their_permission_and_leave_an_audit_row(postpaid, client):
    from django.contrib.auth.models import Permission

    from accounts.tests.factories import UserFactory

    invoice = run_month(postpaid)
    support = UserFactory(is_staff=True)
    support.user_permissions.add(Permission.objects.get(codename="view_invoice"))
    client.force_login(support)
    url = "/console/invoices/invoice/"
    body = {"action": "void", "_selected_action": [invoice.pk], "apply": "1", "reason": "wrong customer"}
    client.post(url, body)
    invoice.refresh_from_db()
    assert invoice.status == "open"  # the action is not offered without the permission

    support.user_permissions.add(Permission.objects.get(codename="void_invoice"))
    client.post(url, body)
    invoice.refresh_from_db()
    assert invoice.status == "void"
    assert AuditLog.objects.filter(action="invoice.voided", actor=support, reason="wrong customer").exists()


def test_the_issued_pdf_is_the_document_as_issued_whatever_is_paid_later(postpaid):
    from django.template.loader import render_to_string

    from invoices import rendering

    invoice = run_month(postpaid)
    as_issued = render_to_string("invoices/pdf/invoice.html", rendering.invoice_context(invoice))
    services.invoice_record_payment(invoice=invoice, amount=Decimal("186.00"), reference="pay")
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert render_to_string("invoices/pdf/invoice.html", rendering.invoice_context(invoice)) == as_issued
    assert "Open" not in as_issued and "186.00" in as_issued
