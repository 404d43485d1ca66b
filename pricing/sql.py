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
`pricing.pricing_models.price_quantity` on the quantities of a period. A state with no row
costs nothing if it is free by default (`pricing.models.FREE_BY_DEFAULT_STATES`); for a
billable state no row means the product has no price there, which metering should report.

PostgreSQL is the system of record. SQLite (the `make run` demo) gets the same view with
its own spelling of infinity and of min/max; SQLite computes discounts in floating point,
so the demo may differ from PostgreSQL in the last digits of a discounted rate.

The SQL is frozen into the database by migrations: changing it needs a new migration
that calls `recreate_view`.
"""

from __future__ import annotations

EFFECTIVE_RATE_VIEW = "pricing_effective_rate"

_DIALECTS = {
    "postgresql": {"inf": "CAST('infinity' AS timestamptz)", "greatest": "GREATEST", "least": "LEAST"},
    # Django stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS' text, which sorts by time.
    "sqlite": {"inf": "'9999-12-31 23:59:59'", "greatest": "MAX", "least": "MIN"},
}

_SQL = """
WITH lp AS (
    SELECT p.id AS price_id, p.product_id, p.currency, p.state, p.unit, pr.billing_model,
           p.amount, p.monthly_cap, p.min_billable_minutes, p.valid_from,
           COALESCE(p.valid_to, {inf}) AS valid_to
    FROM pricing_price p
    JOIN pricing_product pr ON pr.id = p.product_id
    WHERE p.pricing_model = 'per_unit' AND pr.billing_model IN ('hourly', 'monthly', 'addon')
),
cr AS (
    SELECT c.organization_id, lp.price_id, c.id AS contract_id, cp.id AS contract_price_id,
           CASE WHEN cp.kind = 'absolute' THEN cp.amount
                ELSE lp.amount * (100 - cp.discount_percent) / 100.0 END AS rate,
           CASE WHEN cp.kind = 'absolute' THEN COALESCE(cp.monthly_cap, lp.monthly_cap)
                ELSE lp.monthly_cap * (100 - cp.discount_percent) / 100.0 END AS monthly_cap,
           {greatest}(lp.valid_from, c.valid_from) AS valid_from,
           {least}(lp.valid_to, COALESCE(c.valid_to, {inf})) AS valid_to
    FROM pricing_contract c
    JOIN pricing_contractprice cp ON cp.contract_id = c.id
    JOIN lp ON lp.product_id = cp.product_id AND lp.currency = c.currency
           AND (cp.state = lp.state
                OR (cp.state = '' AND NOT EXISTS (
                    SELECT 1 FROM pricing_contractprice cp2
                    WHERE cp2.contract_id = c.id AND cp2.product_id = cp.product_id AND cp2.state = lp.state)))
    WHERE lp.valid_from < COALESCE(c.valid_to, {inf}) AND c.valid_from < lp.valid_to
),
uncovered AS (
    -- The stretches of a list price, for an organisation with overrides on it, that no
    -- contract covers: from each start (the price's start, or a contract's end) to the
    -- next contract start (or the price's end).
    SELECT b.organization_id, b.price_id, b.piece_start AS valid_from,
           COALESCE((SELECT MIN(cr2.valid_from) FROM cr cr2
                     WHERE cr2.organization_id = b.organization_id AND cr2.price_id = b.price_id
                       AND cr2.valid_from >= b.piece_start), b.price_end) AS valid_to
    FROM (
        SELECT cr.organization_id, cr.price_id, lp.valid_from AS piece_start, lp.valid_to AS price_end
        FROM cr JOIN lp ON lp.price_id = cr.price_id
        UNION
        SELECT cr.organization_id, cr.price_id, cr.valid_to, lp.valid_to
        FROM cr JOIN lp ON lp.price_id = cr.price_id
        WHERE cr.valid_to < lp.valid_to
    ) b
)
SELECT o.id AS organization_id, lp.product_id, lp.state, lp.currency, lp.unit, lp.billing_model,
       lp.amount AS rate, CASE WHEN lp.unit = 'hour' THEN lp.amount END AS hourly_rate,
       lp.monthly_cap, lp.min_billable_minutes,
       lp.valid_from, NULLIF(lp.valid_to, {inf}) AS valid_to,
       CAST('list' AS varchar(8)) AS source, lp.price_id,
       CAST(NULL AS bigint) AS contract_id, CAST(NULL AS bigint) AS contract_price_id
FROM accounts_organization o
JOIN lp ON lp.currency = o.currency
WHERE NOT EXISTS (SELECT 1 FROM cr WHERE cr.organization_id = o.id AND cr.price_id = lp.price_id)
UNION ALL
SELECT u.organization_id, lp.product_id, lp.state, lp.currency, lp.unit, lp.billing_model,
       lp.amount, CASE WHEN lp.unit = 'hour' THEN lp.amount END,
       lp.monthly_cap, lp.min_billable_minutes,
       u.valid_from, NULLIF(u.valid_to, {inf}),
       CAST('list' AS varchar(8)), lp.price_id, CAST(NULL AS bigint), CAST(NULL AS bigint)
FROM uncovered u
JOIN lp ON lp.price_id = u.price_id
WHERE u.valid_from < u.valid_to
UNION ALL
SELECT cr.organization_id, lp.product_id, lp.state, lp.currency, lp.unit, lp.billing_model,
       cr.rate, CASE WHEN lp.unit = 'hour' THEN cr.rate END,
       cr.monthly_cap, lp.min_billable_minutes,
       cr.valid_from, NULLIF(cr.valid_to, {inf}),
       CAST('contract' AS varchar(8)), lp.price_id, cr.contract_id, cr.contract_price_id
FROM cr
JOIN lp ON lp.price_id = cr.price_id
"""


def effective_rates_sql(vendor: str) -> str:
    """The SELECT behind the view, for `vendor` ('postgresql' or 'sqlite'); usable as a CTE."""
    try:
        return _SQL.format(**_DIALECTS[vendor]).strip()
    except KeyError:
        raise NotImplementedError(f"pricing.sql has no dialect for {vendor!r}") from None


def recreate_view(schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    schema_editor.execute(f"DROP VIEW IF EXISTS {EFFECTIVE_RATE_VIEW}")
    schema_editor.execute(f"CREATE VIEW {EFFECTIVE_RATE_VIEW} AS {effective_rates_sql(vendor)}")


def drop_view(schema_editor) -> None:
    schema_editor.execute(f"DROP VIEW IF EXISTS {EFFECTIVE_RATE_VIEW}")
