from django.http import FileResponse, Http404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import OrganizationScopedMixin, get_caller
from core.api.idempotency import idempotent
from core.money import ZERO
from invoices import credit_note_documents, engine, rendering, services
from invoices.api.serializers import (
    CreditNoteCreateSerializer,
    CreditNoteListSerializer,
    CreditNoteSerializer,
    InterimQuerySerializer,
    InterimSerializer,
    InvoiceListSerializer,
    InvoiceSerializer,
    ReasonSerializer,
)
from invoices.models import CreditNote, Invoice, InvoiceStatus
from invoices.month_to_date import month_to_date
from invoices.pipeline import month_bounds
from invoices.services.credit_notes import LineCredit


class InvoiceViewSet(OrganizationScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                     viewsets.GenericViewSet):
    """Invoices. Customers see their organisation's issued invoices; staff and platform
    keys see all, and finalize, void and credit them (`invoices:write`). Invoices are
    never edited: corrections are credit notes."""

    queryset = Invoice.objects.select_related("organization").prefetch_related("lines", "credit_notes")
    serializer_class = InvoiceSerializer
    http_method_names = ["get", "post", "head", "options"]
    filterset_fields = ["status", "currency", "is_statement"]
    required_scopes = {
        "list": "billing:read", "retrieve": "billing:read", "pdf": "billing:read",
        "finalize": "invoices:write", "void": "invoices:write", "credit_notes": "invoices:write",
    }

    def get_queryset(self):
        qs = super().get_queryset().order_by("-period_start", "-id")
        if not self.caller.platform:
            qs = qs.exclude(status=InvoiceStatus.DRAFT)
        period = self.request.query_params.get("period")
        if period:
            start, _ = engine.period_for(period)
            qs = qs.filter(period_start=start)
        return qs

    def get_serializer_class(self):
        return InvoiceListSerializer if self.action == "list" else InvoiceSerializer

    @extend_schema(responses={(200, "application/pdf"): bytes})
    @action(detail=True, methods=["get"])
    def pdf(self, request, pk=None):
        invoice = rendering.invoice_ensure_pdf(invoice_id=self.get_object().pk)
        if not invoice.pdf:
            raise Http404
        return FileResponse(invoice.pdf.open("rb"), as_attachment=True, filename=rendering.pdf_filename(invoice),
                            content_type="application/pdf")

    @extend_schema(request=None, responses=InvoiceSerializer)
    @action(detail=True, methods=["post"])
    @idempotent
    def finalize(self, request, pk=None):
        caller = get_caller(request)
        invoice = services.invoice_finalize(invoice=self.get_object(), actor=caller.user, api_key=caller.api_key)
        return Response(InvoiceSerializer(Invoice.objects.get(pk=invoice.pk)).data)

    @extend_schema(request=ReasonSerializer, responses=InvoiceSerializer)
    @action(detail=True, methods=["post"])
    @idempotent
    def void(self, request, pk=None):
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        caller = get_caller(request)
        invoice = services.invoice_void(invoice=self.get_object(), reason=body.validated_data["reason"],
                                        actor=caller.user, api_key=caller.api_key)
        return Response(InvoiceSerializer(Invoice.objects.get(pk=invoice.pk)).data)

    @extend_schema(request=CreditNoteCreateSerializer, responses={201: CreditNoteSerializer})
    @action(detail=True, methods=["post"], url_path="credit-notes")
    @idempotent
    def credit_notes(self, request, pk=None):
        body = CreditNoteCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        lines = None
        if "lines" in data:
            lines = [LineCredit(position=ln["line"], quantity=ln.get("quantity"), amount=ln.get("amount"))
                     for ln in data["lines"]]
        caller = get_caller(request)
        note = services.credit_note_create(invoice=self.get_object(), actor=caller.user, api_key=caller.api_key,
                                           reason=data["reason"], amount=data.get("amount"), lines=lines)
        return Response(CreditNoteSerializer(note).data, status=status.HTTP_201_CREATED)


class CreditNoteViewSet(OrganizationScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                        viewsets.GenericViewSet):
    """Credit notes. Customers see their organisation's; staff and platform keys see all.
    They are issued on an invoice (POST /invoices/{id}/credit-notes, `invoices:write`)
    and never edited."""

    queryset = CreditNote.objects.select_related("invoice").prefetch_related("lines__invoice_line")
    serializer_class = CreditNoteSerializer
    http_method_names = ["get", "head", "options"]
    filterset_fields = ["invoice", "currency"]
    required_scopes = {"list": "billing:read", "retrieve": "billing:read", "pdf": "billing:read"}

    def get_queryset(self):
        return super().get_queryset().order_by("-issued_at", "-id")

    def get_serializer_class(self):
        return CreditNoteListSerializer if self.action == "list" else CreditNoteSerializer

    @extend_schema(responses={(200, "application/pdf"): bytes})
    @action(detail=True, methods=["get"])
    def pdf(self, request, pk=None):
        note = credit_note_documents.credit_note_ensure_pdf(credit_note_id=self.get_object().pk)
        if not note.pdf:
            raise Http404
        return FileResponse(note.pdf.open("rb"), as_attachment=True,
                            filename=credit_note_documents.pdf_filename(note), content_type="application/pdf")


class InterimInvoiceView(APIView):
    """This month's invoice so far, computed by the same handlers as the monthly run.
    Nothing is stored or numbered. Platform callers name the organisation."""

    required_scopes = {"GET": "billing:read"}

    @extend_schema(parameters=[OpenApiParameter("until", str), OpenApiParameter("organization", int)],
                   responses=InterimSerializer)
    def get(self, request):
        query = InterimQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        caller = get_caller(request)
        org = caller.target_organization(query.validated_data.get("organization"))
        until = query.validated_data.get("until")
        if until is None:
            # Without `until`: the month-to-date figure and cut-off every page shows.
            mtd = month_to_date(organization=org)
            ctx, bill = mtd.ctx, mtd.bill
            start, end = month_bounds(mtd.month.year, mtd.month.month)
            period = {"period_start": start, "period_end": end, "until": mtd.as_of or start}
        else:
            if until > timezone.now():
                from core.errors import DomainError

                raise DomainError("An interim invoice covers time that has passed.", field="until")
            ctx, bill = engine.interim_bill(organization=org, until=until)
        if ctx is not None:
            period = {"period_start": ctx.period_start, "period_end": ctx.period_end, "until": ctx.span_end}
        data = {
            "organization": org.pk, **period, "currency": org.currency, "tax_note": "", "lines": [],
            **{k: ZERO for k in ("subtotal", "discount_total", "tax_total", "total", "credit_applied",
                                 "balance_forward", "amount_due")},
        }
        if bill is not None:
            data.update({k: getattr(bill, k) for k in ("subtotal", "discount_total", "tax_total", "total",
                                                         "credit_applied", "balance_forward", "amount_due",
                                                         "tax_note")})
            data["lines"] = [vars(ln) for ln in bill.lines]
        return Response(InterimSerializer(data).data)
