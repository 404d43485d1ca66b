"""`manage.py outbox_relay`: send what a broker outage left in the outbox, now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from core.outbox import relay, waiting_count


class Command(BaseCommand):
    help = "Send the outbox messages still waiting (after a broker outage); safe to run any time."

    def handle(self, *args: Any, **options: Any) -> None:
        sent = relay()
        self.stdout.write(f"sent {sent}; still waiting {waiting_count()}")
