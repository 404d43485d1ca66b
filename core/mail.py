"""A console email backend for `make run` that people can read.

Django's console backend prints the whole MIME message, so an invoice email fills the
terminal with its PDF in base64. This one prints the headers and the plain-text body,
and names each attachment with its size instead of its bytes."""

from __future__ import annotations

from django.core.mail.backends.console import EmailBackend as DjangoConsoleBackend

RULE = "-" * 79


class EmailBackend(DjangoConsoleBackend):
    def write_message(self, message) -> None:
        lines = [f"{name}: {value}" for name, value in (
            ("Subject", message.subject), ("From", message.from_email), ("To", ", ".join(message.to)),
            ("Cc", ", ".join(message.cc)), ("Reply-To", ", ".join(message.reply_to)),
        ) if value]
        lines += ["", message.body.rstrip()]
        for attachment in message.attachments:
            if isinstance(attachment, tuple):
                filename, content, mimetype = attachment[:3]
            else:  # a MIMEBase part
                filename, content, mimetype = attachment.get_filename(), attachment.get_payload(), \
                    attachment.get_content_type()
            size = len(content) if content is not None else 0
            lines.append(f"[attachment: {filename or 'unnamed'} ({mimetype}, {size:,} bytes)]")
        self.stream.write("\n".join(lines) + "\n" + RULE + "\n")
