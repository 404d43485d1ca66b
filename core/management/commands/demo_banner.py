import os

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Print where the demo runs and how to sign in (used by `make run`)."

    def add_arguments(self, parser):
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))

    def handle(self, *args, **options):
        from django.db import connection

        from accounts.demo import DEMO_PASSWORD, DEMO_RECOVERY_CODE, DEMO_TOTP_SECRET

        port = options["port"]
        db = settings.DATABASES["default"]
        where = "embedded, under var/postgres" if str(db["HOST"]).startswith(str(settings.VAR_DIR)) else (
            f"{db['HOST'] or 'local socket'}{':' + str(db['PORT']) if db['PORT'] else ''}")
        major, minor = divmod(connection.pg_version, 10000)
        engine = f"PostgreSQL {major}.{minor} ({where}, database {db['NAME']})"
        broker = "Redis" if settings.REDIS_URL else "filesystem broker under var/broker"
        stripe, paypal = bool(getattr(settings, "STRIPE_SECRET_KEY", "")), bool(getattr(settings, "PAYPAL_CLIENT_ID", ""))
        payments = (" and ".join(n for n, on in (("Stripe", stripe), ("PayPal", paypal)) if on)
                    or "the sandbox provider (no real money; set STRIPE_SECRET_KEY / PAYPAL_CLIENT_ID for real ones)")
        line = "─" * 64
        self.stdout.write(
            f"\n{line}\n"
            f"  cloudbill is starting: http://127.0.0.1:{port}/\n\n"
            f"  Customer portal   customer@cloudbill.example / {DEMO_PASSWORD}\n"
            f"  Billing console   http://127.0.0.1:{port}/console/\n"
            f"                    staff@cloudbill.example / {DEMO_PASSWORD}, then a two-factor code:\n"
            f"                    add the key {DEMO_TOTP_SECRET} to an authenticator app,\n"
            f"                    or the recovery code {DEMO_RECOVERY_CODE} (once per start).\n"
            f"                    DEMO ONLY: this key and code are public; every staff account of\n"
            f"                    the demo has them, and production settings refuse demo data.\n"
            f"  API reference     http://127.0.0.1:{port}/api/docs/\n\n"
            f"  Database: {engine}; broker: {broker}.\n"
            f"  Payments: {payments}.\n"
            f"  Money loop: top up (Payments), start a server (Usage), auto top-up (Credits).\n"
            f"  Web server, Celery worker and Celery beat run together. Ctrl-C stops all.\n"
            f"{line}\n"
        )
