"""Portal pages of credit notes: one note with its lines, and its PDF. A customer sees the
credit notes of their organisation's invoices (listed on each invoice's page)."""

from __future__ import annotations

from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render

from accounts.portal import portal_view
from invoices import credit_note_documents
from invoices.models import CreditNote


def _own(request):
    return CreditNote.objects.filter(organization=request.membership.organization).select_related("invoice")


@portal_view("billing:read", model=CreditNote)
def detail(request, pk: int):
    note = get_object_or_404(_own(request), pk=pk)
    return render(request, "invoices/credit_note/detail.html", credit_note_documents.credit_note_context(note))


@portal_view("billing:read", model=CreditNote)
def pdf(request, pk: int):
    note = get_object_or_404(_own(request), pk=pk)
    note = credit_note_documents.credit_note_ensure_pdf(credit_note_id=note.pk)
    if not note.pdf:
        raise Http404
    return FileResponse(note.pdf.open("rb"), as_attachment=True, filename=credit_note_documents.pdf_filename(note),
                        content_type="application/pdf")
