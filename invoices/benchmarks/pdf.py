"""Rendering invoice PDFs with WeasyPrint: `--invoices` issued invoices of 12 lines in
three groups, each rendered and stored as finalization's worker does. The line before
the figure gives a baseline from the same run: a one-line HTML page through WeasyPrint."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from decimal import Decimal

SLUG = "bench-pdf"


def add_arguments(parser):
    parser.add_argument("--invoices", type=int, default=50)


def _invoices(count: int) -> list[int]:
    from accounts.models import BillingMode, Organization
    from invoices import services
    from invoices.models import Invoice, InvoiceStatus, LineKind
    from invoices.pipeline import SCHEDULED, Bill, BillingContext, Line, month_bounds

    org, _ = Organization.objects.get_or_create(slug=SLUG, defaults={
        "name": "PDF Bench GmbH", "legal_name": "PDF Bench GmbH", "country": "DE", "currency": "EUR",
        "vat_id": "DE811907980", "address_line1": "Torstraße 49", "city": "Berlin", "postal_code": "10119",
        "billing_mode": BillingMode.POSTPAID, "billing_email": "ap@pdf-bench.example"})
    ids = list(Invoice.objects.filter(organization=org).exclude(status=InvoiceStatus.DRAFT)
               .order_by("id").values_list("id", flat=True)[:count])
    year, month = 2000, 1
    while len(ids) < count:
        start, end = month_bounds(year, month)
        if not Invoice.objects.filter(organization=org, period_start=start).exists():
            bill = Bill(organization=org, currency="EUR")
            for g in ("gpu-node-1", "render-farm-7", "storage"):
                for i in range(4):
                    bill.add(Line(kind=LineKind.USAGE, group=g, description=f"H100 80GB × 8, running {i}",
                                  quantity=Decimal("123.5"), unit="hour", unit_price=Decimal("2.06"),
                                  amount=Decimal("254.41"), service_start=start, service_end=end))
            bill.subtotal = bill.total = bill.amount_due = sum((ln.amount for ln in bill.lines), Decimal(0))
            ctx = BillingContext(mode=SCHEDULED, period_start=start, period_end=end, span_start=start,
                                 span_end=end, organization_ids=[org.pk], now=end)
            draft = services.invoice_store_draft(bill=bill, ctx=ctx)
            ids.append(services.invoice_finalize(invoice=draft, render_pdf=False, now=end).pk)
        month = month % 12 + 1
        year += month == 1
    return ids


def run(options: dict, stdout) -> str:
    from django.core.files.base import ContentFile
    from weasyprint import HTML

    from invoices.models import Invoice
    from invoices.rendering import pdf_filename, render_invoice_pdf

    ids = _invoices(options["invoices"])
    HTML(string="<p>warm-up</p>").write_pdf()
    baseline = []
    for _ in range(5):
        t = time.perf_counter()
        HTML(string="<p>Invoice</p>").write_pdf()
        baseline.append((time.perf_counter() - t) * 1000)
    timings = []
    for invoice in Invoice.objects.filter(pk__in=ids).prefetch_related("lines"):
        t = time.perf_counter()
        data = render_invoice_pdf(invoice, list(invoice.lines.all()))
        invoice.pdf.save(pdf_filename(invoice), ContentFile(data), save=False)
        Invoice.objects.filter(pk=invoice.pk).update(pdf=invoice.pdf.name, pdf_rendered_at=datetime.now(UTC))
        timings.append((time.perf_counter() - t) * 1000)
    stdout.write(f"baseline (one-line page) median_ms={statistics.median(baseline):.0f}; "
                 f"invoice p90_ms={sorted(timings)[int(len(timings) * 0.9) - 1]:.0f}")
    return f"pdf invoices={len(timings)} median_ms={statistics.median(timings):.0f}"
