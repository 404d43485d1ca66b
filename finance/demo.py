from __future__ import annotations

from finance.services import accounts_add_group_revenue


def seed(stdout=None) -> None:
    """The demo's product groups get their revenue accounts (they are made after the
    chart's migration)."""
    created = accounts_add_group_revenue()
    if stdout is not None:
        stdout.write(f"finance: {len(created)} revenue account(s) for product groups")
