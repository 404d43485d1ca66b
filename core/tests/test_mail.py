import io

from django.core.mail import EmailMessage

from core.mail import EmailBackend


def test_the_development_console_names_attachments_instead_of_dumping_them():
    stream = io.StringIO()
    message = EmailMessage(subject="Invoice INV-2026-000001", body="Your invoice is attached.\n",
                           from_email="billing@cloudbill.example", to=["ap@acme-ai.example"])
    message.attach("INV-2026-000001.pdf", b"%PDF-1.7" + b"\0" * 20_000, "application/pdf")
    EmailBackend(stream=stream).send_messages([message])
    out = stream.getvalue()
    assert "Subject: Invoice INV-2026-000001" in out and "To: ap@acme-ai.example" in out
    assert "Your invoice is attached." in out
    assert "[attachment: INV-2026-000001.pdf (application/pdf, 20,008 bytes)]" in out
    assert "JVBERi" not in out  # no base64 of the PDF
