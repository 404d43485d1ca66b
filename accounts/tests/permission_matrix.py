"""The permission matrix: who may do what, as data, checked by test_permission_matrix.py.

Two tables and a list of principals:

- API: every operation of /api/v1/ (URL name, HTTP method) → the scope it needs.
- WEB: every other page of the site (portal, sign-in, webhooks, schema) × GET and POST →
  the scope it needs, or PUBLIC (anyone, signed in or not), MEMBER (anyone acting through
  a membership, whatever the role), staff_holding(perm) (a staff session holding that
  Django permission; members, whatever their role, are refused) or NOBODY (the method
  is not served: 405).
- PRINCIPALS: every kind of caller (anonymous, a signed-in person without organisation,
  each role, staff, organisation keys with each scope, keys whose maker's role changed,
  platform keys) → the scopes it is expected to hold, written out here rather than read
  from accounts/scopes.py, so a change there shows up as a broken expectation.

A cell of the matrix is allowed when the principal holds the row's scope (PUBLIC: always;
MEMBER: when it acts through a membership; NOBODY: never). The test walks the URL conf:
a route without a row here fails, and so does a row without a route. Adding a route means
adding its row; changing who may call it means changing its row.
"""

from __future__ import annotations

from dataclasses import dataclass

from finance.reports.registry import reports

NO_ROW = "classify it: add a row saying which scope it needs (or PUBLIC, MEMBER, NOBODY)"

PUBLIC = "public"
MEMBER = "member"
NOBODY = "nobody"
SIGNED_IN = "signed in"  # any person with a session, member or not, staff included
OWNER_ROLE = "owner role"  # a session of an owner (a setting only owners may change)
SCRAPER = "metrics scraper"  # METRICS_TOKEN or METRICS_ALLOWED_NETWORKS (core/metrics.py), no session or key
STAFF_PREFIX = "staff holding "  # a staff session holding that model permission (console pages outside the admin)


def staff_holding(permission: str) -> str:
    return STAFF_PREFIX + permission


# --- The API: (URL name, method) → scope ----------------------------------------------------

API: dict[tuple[str, str], str] = {
    # accounts
    ("own-organization", "GET"): "account:read",
    ("own-organization", "PATCH"): "account:write",
    ("organization-list", "GET"): "account:read",
    ("organization-list", "POST"): "organizations:write",
    ("organization-detail", "GET"): "account:read",
    ("organization-detail", "PATCH"): "organizations:write",
    ("member-list", "GET"): "account:read",
    ("member-list", "POST"): "members:write",
    ("member-detail", "GET"): "account:read",
    ("member-detail", "PATCH"): "members:write",
    ("member-detail", "DELETE"): "members:write",
    ("api-key-list", "GET"): "account:read",
    ("api-key-list", "POST"): "api_keys:write",
    ("api-key-detail", "GET"): "account:read",
    ("api-key-detail", "DELETE"): "api_keys:write",
    # pricing
    ("quote", "POST"): "account:read",
    ("product-list", "GET"): "account:read",
    ("product-list", "POST"): "prices:write",
    ("product-detail", "GET"): "account:read",
    ("product-detail", "PATCH"): "prices:write",
    ("price-list", "GET"): "account:read",
    ("price-list", "POST"): "prices:write",
    ("price-effective", "GET"): "account:read",
    ("price-detail", "GET"): "account:read",
    ("price-detail", "DELETE"): "prices:write",
    ("price-end", "POST"): "prices:write",
    ("contract-list", "GET"): "billing:read",
    ("contract-list", "POST"): "prices:write",
    ("contract-detail", "GET"): "billing:read",
    ("contract-end", "POST"): "prices:write",
    # usage
    ("events", "POST"): "events:write",
    ("usage", "GET"): "usage:read",
    ("usage-month-to-date", "GET"): "usage:read",
    ("spend", "GET"): "usage:read",
    ("spend-forecast", "GET"): "usage:read",
    ("resource-list", "GET"): "usage:read",
    ("resource-detail", "GET"): "usage:read",
    ("resource-history", "GET"): "usage:read",
    ("resource-billable", "GET"): "usage:read",
    ("project-list", "GET"): "usage:read",
    ("project-detail", "GET"): "usage:read",
    ("admission", "POST"): "admission:check",
    # budgets
    ("budget-list", "GET"): "billing:read",
    ("budget-list", "POST"): "billing:write",
    ("budget-detail", "GET"): "billing:read",
    ("budget-detail", "PATCH"): "billing:write",
    ("budget-detail", "DELETE"): "billing:write",
    # credits
    ("credit-balance", "GET"): "billing:read",
    ("credit-adjustments", "POST"): "credits:write",
    ("credit-auto-topup", "GET"): "billing:read",
    ("credit-auto-topup", "PUT"): "billing:write",
    ("credit-resume", "POST"): "billing:write",
    ("credit-ledger-list", "GET"): "billing:read",
    ("credit-ledger-detail", "GET"): "billing:read",
    ("credit-event-list", "GET"): "billing:read",
    ("credit-event-detail", "GET"): "billing:read",
    ("credit-topup-list", "GET"): "billing:read",
    ("credit-topup-list", "POST"): "billing:write",
    ("credit-topup-detail", "GET"): "billing:read",
    ("credit-promo-grant-list", "GET"): "billing:read",
    ("credit-promo-grant-list", "POST"): "credits:write",
    ("credit-promo-grant-detail", "GET"): "billing:read",
    # invoices
    ("invoice-interim", "GET"): "billing:read",
    ("invoice-list", "GET"): "billing:read",
    ("invoice-detail", "GET"): "billing:read",
    ("invoice-pdf", "GET"): "billing:read",
    ("invoice-finalize", "POST"): "invoices:write",
    ("invoice-void", "POST"): "invoices:write",
    ("invoice-credit-notes", "POST"): "invoices:write",
    ("credit-note-list", "GET"): "billing:read",
    ("credit-note-detail", "GET"): "billing:read",
    ("credit-note-pdf", "GET"): "billing:read",
    # payments
    ("payment-list", "GET"): "billing:read",
    ("payment-detail", "GET"): "billing:read",
    ("payment-refund", "POST"): "payments:write",
    ("refund-list", "GET"): "billing:read",
    ("refund-detail", "GET"): "billing:read",
    # finance: every registered report has its own route; the journal's lines.
    **{(f"report-{name}", "GET"): "reports:read" for name in reports()},
    ("export-journal", "GET"): "reports:read",
    # webhooks: an organisation's endpoints (owners, admins, their keys); platform keys and staff all
    ("webhook-event-types", "GET"): "account:read",
    ("webhook-endpoint-list", "GET"): "webhooks:write",
    ("webhook-endpoint-list", "POST"): "webhooks:write",
    ("webhook-endpoint-detail", "GET"): "webhooks:write",
    ("webhook-endpoint-detail", "PATCH"): "webhooks:write",
    ("webhook-endpoint-detail", "DELETE"): "webhooks:write",
    ("webhook-endpoint-rotate-secret", "POST"): "webhooks:write",
    ("webhook-endpoint-test", "POST"): "webhooks:write",
    ("webhook-endpoint-replay", "POST"): "webhooks:write",
    ("webhook-delivery-list", "GET"): "webhooks:write",
    ("webhook-delivery-detail", "GET"): "webhooks:write",
    ("webhook-delivery-replay", "POST"): "webhooks:write",
}

# --- Every other page: (URL name, method) → scope, PUBLIC, MEMBER or NOBODY -------------------


def _page(name: str, get: str, post: str) -> dict[tuple[str, str], str]:
    return {(name, "GET"): get, (name, "POST"): post}


WEB: dict[tuple[str, str], str] = {
    # The site itself.
    **_page("healthz", PUBLIC, NOBODY),
    **_page("readyz", PUBLIC, NOBODY),
    # Prometheus: a bearer METRICS_TOKEN or an allowed network, which no principal here is.
    **_page("metrics", SCRAPER, NOBODY),
    **_page("api-schema", PUBLIC, NOBODY),
    **_page("api-docs", PUBLIC, NOBODY),
    # Signing in, out, resetting a password, accepting an invitation.
    **_page("login", PUBLIC, PUBLIC),
    **_page("logout", NOBODY, PUBLIC),
    **_page("password_reset", PUBLIC, PUBLIC),
    **_page("password_reset_done", PUBLIC, NOBODY),
    **_page("password_reset_confirm", PUBLIC, PUBLIC),
    **_page("password_reset_complete", PUBLIC, NOBODY),
    **_page("accept_invitation", PUBLIC, PUBLIC),
    # Two-factor sign-in: the code step and one's own authenticator, for anyone signed in.
    **_page("two_factor_verify", SIGNED_IN, SIGNED_IN),
    **_page("two_factor_enrol", SIGNED_IN, SIGNED_IN),
    **_page("two_factor_recovery_codes", SIGNED_IN, SIGNED_IN),
    **_page("two_factor_disable", NOBODY, SIGNED_IN),
    # The portal: accounts.
    **_page("portal:dashboard", MEMBER, MEMBER),
    **_page("portal:switch_organization", NOBODY, MEMBER),
    **_page("portal:settings", "account:read", "account:write"),
    **_page("portal:time_zone", NOBODY, MEMBER),  # one's own display zone, whatever the role
    **_page("portal:two_factor_requirement", NOBODY, OWNER_ROLE),
    **_page("portal:team", "account:read", "members:write"),
    **_page("portal:member_role", NOBODY, "members:write"),
    **_page("portal:member_remove", NOBODY, "members:write"),
    **_page("portal:invitation_revoke", NOBODY, "members:write"),
    **_page("portal:api_keys", "account:read", "api_keys:write"),
    **_page("portal:api_key_revoke", NOBODY, "api_keys:write"),
    # Usage, pricing.
    **_page("usage:index", "usage:read", "usage:read"),
    **_page("usage:export", "usage:read", "usage:read"),
    **_page("usage:spend", "usage:read", "usage:read"),
    **_page("usage:spend_export", "usage:read", "usage:read"),
    **_page("usage:resource", "usage:read", "usage:read"),
    **_page("usage:resource_tags", NOBODY, "projects:write"),
    **_page("usage:projects", "usage:read", "projects:write"),
    **_page("usage:project_rename", NOBODY, "projects:write"),
    **_page("usage:sandbox_start", NOBODY, "account:write"),
    **_page("usage:sandbox_stop", NOBODY, "account:write"),
    **_page("pricing:index", "account:read", "account:read"),
    # Credits.
    **_page("budgets:index", "billing:read", "billing:write"),
    **_page("budgets:detail", "billing:read", "billing:write"),
    **_page("budgets:delete", NOBODY, "billing:write"),
    **_page("credits:index", "billing:read", "billing:read"),
    **_page("credits:auto_topup", NOBODY, "billing:write"),
    **_page("credits:resume", NOBODY, "billing:write"),
    **_page("credits:ledger_csv", "billing:read", NOBODY),
    # Invoices.
    **_page("invoices:index", "billing:read", "billing:read"),
    **_page("invoices:interim", "billing:read", "billing:read"),
    **_page("invoices:export_csv", "billing:read", NOBODY),
    **_page("invoices:year_pdfs", "billing:read", NOBODY),
    **_page("invoices:detail", "billing:read", "billing:read"),
    **_page("invoices:pdf", "billing:read", "billing:read"),
    **_page("invoices:credit_note", "billing:read", "billing:read"),
    **_page("invoices:credit_note_pdf", "billing:read", "billing:read"),
    # Payments; the providers' webhooks prove themselves with a signature, not a session.
    **_page("payments:index", "billing:read", "billing:read"),
    **_page("payments:export_csv", "billing:read", NOBODY),
    **_page("payments:topup", "billing:write", "billing:write"),
    **_page("payments:pay_invoice", NOBODY, "billing:write"),
    **_page("payments:detail", "billing:read", "billing:read"),
    **_page("payments:receipt_pdf", "billing:read", "billing:read"),
    **_page("payments:return", "billing:read", "billing:read"),
    **_page("payments:confirm", "billing:write", "billing:write"),
    **_page("payments:method_add", NOBODY, "billing:write"),
    **_page("payments:method_added", "billing:write", "billing:write"),
    **_page("payments:method_default", NOBODY, "billing:write"),
    **_page("payments:method_remove", NOBODY, "billing:write"),
    **_page("payments:sandbox_checkout", "billing:write", "billing:write"),
    **_page("payments:sandbox_add_card", "billing:write", "billing:write"),
    **_page("payments:stripe_webhook", NOBODY, PUBLIC),
    **_page("payments:paypal_webhook", NOBODY, PUBLIC),
    # Finance: the journal's exports and the reports, for console staff (the API: reports:read).
    # Webhooks: an organisation's endpoints, for owners and admins.
    **_page("webhooks:index", "webhooks:write", "webhooks:write"),
    **_page("webhooks:endpoint", "webhooks:write", "webhooks:write"),
    **_page("webhooks:rotate", NOBODY, "webhooks:write"),
    **_page("webhooks:test", NOBODY, "webhooks:write"),
    **_page("webhooks:replay", NOBODY, "webhooks:write"),
    **_page("webhooks:toggle", NOBODY, "webhooks:write"),
    **_page("webhooks:delete", NOBODY, "webhooks:write"),
    **_page("webhooks:delivery", "webhooks:write", NOBODY),
    **_page("webhooks:delivery_replay", NOBODY, "webhooks:write"),
    **_page("finance:journal_csv", staff_holding("finance.view_journalentry"), NOBODY),
    **_page("finance:journal_datev", staff_holding("finance.view_journalentry"), NOBODY),
    **_page("finance:reports", staff_holding("finance.view_journalentry"), NOBODY),
    **_page("finance:report", staff_holding("finance.view_journalentry"), NOBODY),
    **_page("finance:report_csv", staff_holding("finance.view_journalentry"), NOBODY),
}

# --- Who calls ------------------------------------------------------------------------------

OWNER = frozenset({"account:read", "account:write", "members:write", "api_keys:write", "usage:read",
                   "billing:read", "billing:write", "webhooks:write", "projects:write"})
ADMIN = OWNER  # the owner rules set them apart, in test_grants.py, not their scopes
BILLING = frozenset({"account:read", "account:write", "usage:read", "billing:read", "billing:write"})
VIEWER = frozenset({"account:read", "usage:read", "billing:read"})
EXPECTED_ROLE_SCOPES = {"owner": OWNER, "admin": ADMIN, "billing": BILLING, "viewer": VIEWER}
PLATFORM_ONLY = frozenset({"organizations:write", "events:write", "resources:write", "prices:write",
                           "credits:write", "invoices:write", "payments:write", "admission:check",
                           "reports:read"})
EVERY_SCOPE = OWNER | PLATFORM_ONLY
# Read-only staff read every :read scope, the platform's reports:read included.
READ = frozenset({"account:read", "usage:read", "billing:read", "reports:read"})


@dataclass(frozen=True)
class Principal:
    """One column of the matrix.

    kind:  anonymous | session (a person: `role` in the organisation, None for no
           membership; `staff_perm` makes them staff) | key (an organisation key its
           maker, a member of `role`, made with `key_scopes`; `maker_now` is the maker's
           role at request time, "left" when they are gone; role None: made by the
           platform) | platform key (`key_scopes`).
    holds: the scopes it is expected to hold, which decide each cell.
    """

    kind: str
    holds: frozenset[str] = frozenset()
    role: str | None = None
    staff_perm: str | None = None
    key_scopes: frozenset[str] = frozenset()
    maker_now: str | None = None

    @property
    def member(self) -> bool:
        """Acts through a membership (MEMBER pages); only people sign in to the portal."""
        return self.kind == "session" and self.role is not None and self.staff_perm is None


PRINCIPALS: dict[str, Principal] = {
    "anonymous": Principal("anonymous"),
    "signed in, no organisation": Principal("session"),
    "owner": Principal("session", OWNER, role="owner"),
    "admin": Principal("session", ADMIN, role="admin"),
    "billing": Principal("session", BILLING, role="billing"),
    "viewer": Principal("session", VIEWER, role="viewer"),
    "staff, platform_read": Principal("session", READ, staff_perm="platform_read"),
    "staff, platform_write": Principal("session", EVERY_SCOPE, staff_perm="platform_write"),
    # Console staff reading the journal (both staff groups hold it): no API scope at all.
    "staff, finance.view_journalentry": Principal("session", frozenset(), staff_perm="finance.view_journalentry"),
    **{
        f"key [{scope}] by an owner": Principal("key", frozenset({scope}), role="owner", key_scopes=frozenset({scope}))
        for scope in sorted(OWNER)
    },
    "key [every scope] by an owner": Principal("key", OWNER, role="owner", key_scopes=OWNER),
    "key [every scope] by an admin, now billing": Principal("key", BILLING, role="admin", key_scopes=OWNER,
                                                           maker_now="billing"),
    "key [every scope] by an admin, now viewer": Principal("key", VIEWER, role="admin", key_scopes=OWNER,
                                                          maker_now="viewer"),
    "key [every scope] by an admin who left": Principal("key", frozenset(), role="admin", key_scopes=OWNER,
                                                       maker_now="left"),
    "key [every scope] by the platform": Principal("key", OWNER, key_scopes=OWNER),
    "platform key [every scope]": Principal("platform key", EVERY_SCOPE, key_scopes=EVERY_SCOPE),
    **{
        f"platform key [{scope}]": Principal("platform key", frozenset({scope}), key_scopes=frozenset({scope}))
        for scope in sorted(PLATFORM_ONLY)
    },
}

WEB_PRINCIPALS = [name for name, p in PRINCIPALS.items() if p.kind in ("anonymous", "session")]


def allowed(principal: Principal, rule: str, *, web: bool) -> bool:
    """One cell of the matrix. Pages act through a membership: staff and keys hold no
    scope there."""
    if rule == PUBLIC:
        return True
    if rule in (NOBODY, SCRAPER) or principal.kind == "anonymous":
        return False
    if rule == SIGNED_IN:
        return principal.kind == "session"
    if rule == OWNER_ROLE:
        return principal.kind == "session" and principal.role == "owner"
    if rule.startswith(STAFF_PREFIX):
        return principal.kind == "session" and principal.staff_perm == rule.removeprefix(STAFF_PREFIX)
    if rule == MEMBER or web:
        return principal.member and (rule == MEMBER or rule in principal.holds)
    return rule in principal.holds


def expanded() -> dict[tuple[str, str, str], bool]:
    """The whole matrix, cell by cell: (URL name, method, principal) → allowed."""
    cells = {(name, method, who): allowed(p, rule, web=False) for (name, method), rule in API.items()
             for who, p in PRINCIPALS.items()}
    cells |= {(name, method, who): allowed(PRINCIPALS[who], rule, web=True) for (name, method), rule in WEB.items()
              for who in WEB_PRINCIPALS}
    return cells
