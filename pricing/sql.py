"""Effective rates as SQL, for set-based metering: the view `pricing_effective_rate`.

One row per organisation, product, resource state and unit for each stretch of time over
which one rate holds, with contract overrides already applied. Stretches are half-open
and never overlap for the same (organization_id, product_id, state, unit), so metering
prices every running resource of a minute in one statement:

    SELECT r.id, er.hourly_rate / 60 AS minute_rate, er.price_id, er.contract_id
    FROM usage_resource r
    JOIN pricing_effective_rate er
      ON er.organization_id = r.organization_id AND er.product_id = r.product_id
     AND er.state = r.state AND er.unit = 'hour'
     AND er.valid_from <= %(minute)s AND (er.valid_to IS NULL OR er.valid_to > %(minute)s)

Columns:
    organization_id      accounts_organization.id
    product_id           pricing_product.id
    state                resource state the rate applies to (running, stopped, hibernated, …)
    currency             ISO 4217, always the organisation's currency
    unit                 'hour' | 'month' | 'gb_month' (what one `rate` buys)
    billing_model        'hourly' | 'monthly' | 'addon' (add-ons have an 'hour' and a 'month'
                         row: join the unit of the parent resource's billing model)
    rate                 Decimal per `unit`, contract discount or absolute price applied
    hourly_rate          `rate` when unit = 'hour', else NULL
    monthly_cap          hourly prices: the most one calendar month may cost, else NULL
    min_billable_minutes hourly prices: a shorter run is billed this many minutes
    valid_from           inclusive, aware UTC
    valid_to             exclusive; NULL = open-ended
    source               'list' | 'contract'
    price_id             the list price the row derives from (always set)
    contract_id          the contract whose override applies, else NULL
    contract_price_id    the override row, else NULL

Only per-unit prices of state-priced products are in the view (hourly, monthly and add-on
billing). Quantity-priced products (overage, tiered, package) are priced by
`pricing.quantity_pricing.price_quantity` on the quantities of a period. A state with no row
costs nothing if it is free by default (`pricing.models.FREE_BY_DEFAULT_STATES`); for a
billable state no row means the product has no price there, which metering should report.

The SQL is frozen into the database by migrations: changing it needs a new migration
that calls `recreate_view`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor

EFFECTIVE_RATE_VIEW = "pricing_effective_rate"

# An open-ended validity compares as infinitely late.
_INF = "CAST('infinity' AS timestamptz)"

# Is list price `p` overridden by contract `c` at all (in some stretch)? Which override
# applies does not matter here, so this stays a plain anti-join for the planner.
_COVERS = """cp.contract_id = c.id AND cp.product_id = p.product_id AND c.currency = p.currency
        AND cp.state IN (p.state, '')
        AND p.valid_from < COALESCE(c.valid_to, {inf}) AND c.valid_from < COALESCE(p.valid_to, {inf})"""

# A list price as the view sees it: per-unit prices of state-priced products.
_PRICED = """pr.id = p.product_id
        AND p.pricing_model = 'per_unit' AND pr.billing_model IN ('hourly', 'monthly', 'addon')"""

# The override of contract `c` that applies to list price `p`: one for its state, else one
# for every state of the product; only where contract and price periods intersect.
_OVERRIDE = """cp.contract_id = c.id AND cp.product_id = p.product_id AND c.currency = p.currency
        AND (cp.state = p.state OR (cp.state = '' AND NOT EXISTS (
            SELECT 1 FROM pricing_contractprice cp2
            WHERE cp2.contract_id = c.id AND cp2.product_id = p.product_id AND cp2.state = p.state)))
        AND p.valid_from < COALESCE(c.valid_to, {inf}) AND c.valid_from < COALESCE(p.valid_to, {inf})"""

# Three branches, no CTEs at the top, so PostgreSQL flattens the view into an append of
# joins and drives them from the caller's join keys (organisation, product, state)
# through the primary keys and the price index instead of computing every row.
_SQL = """
SELECT o.id AS organization_id, p.product_id, p.state, p.currency, p.unit, pr.billing_model,
       {num_amount} AS rate, CASE WHEN p.unit = 'hour' THEN {num_amount} END AS hourly_rate,
       {num_cap} AS monthly_cap, p.min_billable_minutes, p.valid_from, p.valid_to,
       CAST('list' AS varchar(8)) AS source, p.id AS price_id,
       CAST(NULL AS bigint) AS contract_id, CAST(NULL AS bigint) AS contract_price_id
FROM accounts_organization o
JOIN pricing_price p ON p.currency = o.currency
    JOIN pricing_product pr ON {priced}
WHERE NOT EXISTS (SELECT 1 FROM pricing_contract c, pricing_contractprice cp
                  WHERE c.organization_id = o.id AND {covers})
UNION ALL
SELECT c.organization_id, p.product_id, p.state, p.currency, p.unit, pr.billing_model,
       {num_rate}, CASE WHEN p.unit = 'hour' THEN {num_rate} END,
       {num_contract_cap}, p.min_billable_minutes,
       GREATEST(p.valid_from, c.valid_from),
       NULLIF(LEAST(COALESCE(p.valid_to, {inf}), COALESCE(c.valid_to, {inf})), {inf}),
       CAST('contract' AS varchar(8)), p.id, c.id, cp.id
FROM pricing_contract c
JOIN pricing_contractprice cp ON cp.contract_id = c.id
JOIN pricing_price p ON {override}
    JOIN pricing_product pr ON {priced}
UNION ALL
SELECT u.organization_id, p.product_id, p.state, p.currency, p.unit, pr.billing_model,
       {num_amount}, CASE WHEN p.unit = 'hour' THEN {num_amount} END,
       {num_cap}, p.min_billable_minutes, u.valid_from, NULLIF(u.valid_to, {inf}),
       CAST('list' AS varchar(8)), p.id, CAST(NULL AS bigint), CAST(NULL AS bigint)
FROM (
    -- For an organisation with overrides on a list price, the stretches of that price no
    -- contract covers: from each start (the price's, or a contract's end) to the next
    -- contract start (or the price's end). Few rows: only organisations with contracts.
    SELECT b.organization_id, b.price_id, b.piece_start AS valid_from,
           COALESCE((SELECT MIN(cv2.valid_from) FROM ({covered}) cv2
                     WHERE cv2.organization_id = b.organization_id AND cv2.price_id = b.price_id
                       AND cv2.valid_from >= b.piece_start), b.price_end) AS valid_to
    FROM (
        SELECT cv.organization_id, cv.price_id, cv.price_start AS piece_start, cv.price_end FROM ({covered}) cv
        UNION
        SELECT cv.organization_id, cv.price_id, cv.valid_to, cv.price_end FROM ({covered}) cv
        WHERE cv.valid_to < cv.price_end
    ) b
) u
JOIN pricing_price p ON p.id = u.price_id
    JOIN pricing_product pr ON {priced}
WHERE u.valid_from < u.valid_to
"""

# Where a contract overrides a list price: per organisation and price, the covered stretch.
_COVERED = """SELECT c.organization_id, p.id AS price_id, p.valid_from AS price_start,
           COALESCE(p.valid_to, {inf}) AS price_end,
           GREATEST(p.valid_from, c.valid_from) AS valid_from,
           LEAST(COALESCE(p.valid_to, {inf}), COALESCE(c.valid_to, {inf})) AS valid_to
    FROM pricing_contract c JOIN pricing_contractprice cp ON cp.contract_id = c.id
    JOIN pricing_price p ON {covers}
    JOIN pricing_product pr ON {priced}"""


def _num(expression: str) -> str:
    return f"CAST({expression} AS numeric)"


def _render() -> str:
    num = _num
    discount = "(100 - cp.discount_percent) / 100.0"
    override = _OVERRIDE.format(inf=_INF)
    covers = _COVERS.format(inf=_INF)
    covered = _COVERED.format(priced=_PRICED, covers=covers, inf=_INF)
    return _SQL.format(
        priced=_PRICED, override=override, covers=covers, covered=covered,
        num_amount=num("p.amount"), num_cap=num("p.monthly_cap"),
        num_rate=num(f"CASE WHEN cp.kind = 'absolute' THEN cp.amount ELSE p.amount * {discount} END"),
        num_contract_cap=num(f"CASE WHEN cp.kind = 'absolute' THEN COALESCE(cp.monthly_cap, p.monthly_cap) "
                             f"ELSE p.monthly_cap * {discount} END"),
        inf=_INF,
    )


def effective_rates_sql() -> str:
    """The SELECT behind the view; usable as a CTE."""
    return _render().strip()


def recreate_view(schema_editor: BaseDatabaseSchemaEditor) -> None:
    schema_editor.execute(f"DROP VIEW IF EXISTS {EFFECTIVE_RATE_VIEW}")
    schema_editor.execute(f"CREATE VIEW {EFFECTIVE_RATE_VIEW} AS {effective_rates_sql()}")


def drop_view(schema_editor: BaseDatabaseSchemaEditor) -> None:
    schema_editor.execute(f"DROP VIEW IF EXISTS {EFFECTIVE_RATE_VIEW}")
