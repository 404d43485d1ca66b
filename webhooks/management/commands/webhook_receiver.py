"""`python manage.py webhook_receiver`: the demo's customer side. Listens on
127.0.0.1:8099 (the demo endpoint's URL), verifies every request with the
`standardwebhooks` library and the endpoint's secret, prints what it got, answers 200
(400 to a request that does not verify)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from webhooks.demo import DEMO_RECEIVER_PORT, DEMO_URL
from webhooks.models import WebhookEndpoint
from webhooks.receiver import Received, Receiver


class Command(BaseCommand):
    help = "Run a webhook receiver that verifies Standard Webhooks signatures (the demo's endpoint)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=DEMO_RECEIVER_PORT)
        parser.add_argument("--secret", action="append", default=[],
                            help="whsec_… to verify with (repeatable); default: the secrets of the endpoints "
                                 f"pointing at {DEMO_URL}.")

    def handle(self, *args, port: int, secret: list[str], **options):
        secrets = list(secret)
        if not secrets:
            for ep in WebhookEndpoint.objects.filter(url=f"http://127.0.0.1:{port}/hook"):
                secrets += [ep.secret] + ([ep.previous_secret] if ep.previous_secret else [])
        if not secrets:
            raise CommandError(f"No endpoint points at http://127.0.0.1:{port}/hook: pass --secret whsec_…")

        def show(entry: Received) -> None:
            if entry.verified:
                p = entry.payload or {}
                self.stdout.write(self.style.SUCCESS(
                    f"verified  {entry.webhook_id}  {p.get('type')}  sequence {p.get('sequence')}  "
                    f"organisation {p.get('organization')}  data {p.get('data')}"))
            else:
                self.stdout.write(self.style.ERROR(f"REJECTED  {entry.webhook_id}: no signature verifies"))

        receiver = Receiver(secrets=secrets, port=port, on_receive=show)
        self.stdout.write(f"Listening on {receiver.url}; Ctrl-C to stop.")
        try:
            receiver.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            receiver.server.server_close()
