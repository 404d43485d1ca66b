"""An issued invoice cannot be changed through the API, the console or the ORM."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from accounts.models import BillingMode
from accounts.staff import BILLING_ADMIN
from accounts.tests.factories import OrganizationFactory, UserFactory
from invoices.models import InvoiceLine
from invoices.tests.factories import make_invoice

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued():
    return make_invoice(OrganizationFactory(billing_mode=BillingMode.POSTPAID), amounts=("40.00", "2.50"))


def test_the_database_refuses_to_change_an_issued_total(issued):
    issued.total = Decimal("1.00")
    with pytest.raises(IntegrityError), transaction.atomic():
        issued.save()


def test_the_database_refuses_a_bulk_update_of_issued_amounts(issued):
    from invoices.models import Invoice

    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=issued.pk).update(amount_due=Decimal("0"))


def test_the_database_refuses_new_changed_or_deleted_lines_on_an_issued_invoice(issued):
    line = issued.lines.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.filter(pk=line.pk).update(amount=Decimal("0"))
    with pytest.raises(IntegrityError), transaction.atomic():
        line.delete()
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.create(invoice=issued, position=99, kind="usage", description="sneaky", amount=Decimal("1"))


def test_a_line_moved_onto_an_issued_invoice_or_one_among_many_new_ones_is_refused_whole(issued):
    """Both sides of an UPDATE are checked (migration 0005): 0002's trigger looked only at
    where a line came from, so a draft's line could be moved onto an issued invoice."""
    draft = make_invoice(issued.organization, amounts=("5.00", "6.00"), month=10, finalize=False)
    line = draft.lines.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.filter(pk=line.pk).update(invoice=issued, position=77)  # no clash of positions
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.bulk_create(
            [InvoiceLine(invoice=draft, position=50 + i, kind="usage", description="fine", amount=Decimal("1"))
             for i in range(5)]
            + [InvoiceLine(invoice=issued, position=99, kind="usage", description="sneaky", amount=Decimal("1"))])
    assert draft.lines.count() == 2 and issued.lines.count() == 2
    # A draft's lines still move freely, in bulk.
    InvoiceLine.objects.filter(invoice=draft).update(description="changed")
    InvoiceLine.objects.bulk_create([InvoiceLine(invoice=draft, position=7, kind="usage", description="more",
                                                 amount=Decimal("1"))])
    InvoiceLine.objects.filter(invoice=draft, position=7).delete()
    assert set(draft.lines.values_list("description", flat=True)) == {"changed"}


def test_the_database_refuses_to_delete_an_issued_invoice(issued):
    with pytest.raises(IntegrityError), transaction.atomic():
        issued.delete()


def test_status_and_payment_progress_may_still_move(issued):
    from invoices.models import Invoice

    Invoice.objects.filter(pk=issued.pk).update(amount_paid=Decimal("10.00"))
    issued.refresh_from_db()
    assert issued.amount_paid == Decimal("10.00")


def test_the_api_offers_no_way_to_edit_an_invoice(issued, platform_api):
    url = f"/api/v1/invoices/{issued.pk}"
    assert platform_api.patch(url, {"total": "1.00"}, format="json").status_code == 405
    assert platform_api.put(url, {"total": "1.00"}, format="json").status_code == 405
    assert platform_api.delete(url).status_code == 405
    issued.refresh_from_db()
    assert issued.total == Decimal("42.50")


def test_the_console_shows_an_issued_invoice_read_only(issued, client):
    staff = UserFactory(is_staff=True)
    staff.groups.add(Group.objects.get(name=BILLING_ADMIN))
    client.force_login(staff)
    url = f"/console/invoices/invoice/{issued.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="total"' not in page.content
    assert client.post(url, {"total": "1.00"}).status_code == 403
    issued.refresh_from_db()
    assert issued.total == Decimal("42.50")


def test_lines_written_by_copy_meet_the_same_guard(issued):
    """The monthly run writes lines with COPY (core.copyrows): the row trigger fires for it."""
    from core.copyrows import copy_rows

    with pytest.raises(IntegrityError), transaction.atomic():
        copy_rows(InvoiceLine._meta.db_table, ["invoice_id", "position", "kind", "group", "description", "amount"],
                  [(issued.pk, 99, "usage", "", "sneaky", Decimal("1"))])
    assert issued.lines.count() == 2
