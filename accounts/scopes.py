"""What an API key or a member may do, as named scopes.

Customer keys and members act inside one organisation; platform keys (integrators such
as the provisioning system) and staff act across organisations. A role is just the set
of scopes its members hold, so one check (`Caller.can`) serves keys and people alike.
"""

from django.db import models

SCOPES: dict[str, str] = {
    # Inside one organisation.
    "account:read": "Read the organisation, its billing profile and members.",
    "account:write": "Edit the billing profile.",
    "members:write": "Invite and remove members, change roles.",
    "api_keys:write": "Create and revoke the organisation's API keys.",
    "usage:read": "Read resources, usage and running costs.",
    "billing:read": "Read balances, ledgers, invoices and payments.",
    "billing:write": "Top up credit, manage payment methods, pay invoices.",
    "webhooks:write": "Manage webhook endpoints and their secrets, read their deliveries, replay and test them.",
    "projects:write": "Create and rename projects; move resources between projects and change their labels.",
    # Platform keys and staff hold scopes across every organisation; these ones only they hold.
    "organizations:write": "Create and edit organisations and their members.",
    "events:write": "Send lifecycle events and metered usage.",
    "resources:write": "Create and change resources.",
    "prices:write": "Edit the price book.",
    "credits:write": "Grant credit and make ledger adjustments.",
    "invoices:write": "Finalize, void and credit invoices.",
    "payments:write": "Record and refund payments.",
    "admission:check": "Ask whether an organisation may start a product (runway admission).",
    "reports:read": "Read the finance reports and the journal's lines, across every organisation.",
}

ORGANIZATION_SCOPES = frozenset(
    {"account:read", "account:write", "members:write", "api_keys:write", "usage:read", "billing:read", "billing:write",
     "webhooks:write", "projects:write"}
)
PLATFORM_SCOPES = frozenset(SCOPES)
READ_SCOPES = frozenset(s for s in SCOPES if s.endswith(":read"))


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    BILLING = "billing", "Billing"
    VIEWER = "viewer", "Viewer"


ROLE_SCOPES: dict[str, frozenset[str]] = {
    Role.OWNER: ORGANIZATION_SCOPES,
    # Admins do everything owners do except touch owners (enforced in accounts.services).
    Role.ADMIN: ORGANIZATION_SCOPES,
    Role.BILLING: frozenset({"account:read", "account:write", "usage:read", "billing:read", "billing:write"}),
    Role.VIEWER: frozenset({"account:read", "usage:read", "billing:read"}),
}

ROLE_DESCRIPTIONS: dict[str, str] = {
    Role.OWNER: "Everything, including managing other owners.",
    Role.ADMIN: "Everything except changing or removing owners.",
    Role.BILLING: "Billing profile, credit, payment methods, invoices; read usage.",
    Role.VIEWER: "Read-only: usage, invoices, balance.",
}
