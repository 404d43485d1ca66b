"""Every registered report once over a year of a fleet's stored data, beside bare SQL.

`python manage.py benchmark reports --orgs 10000 --months 12`

Set-up (not timed): the tables the reports read are made again in a schema of their own,
`bench_reports`, `LIKE … INCLUDING ALL` (same columns, defaults and constraints; not
the triggers that refuse the updates and deletes the benchmark never makes, but those
that keep `usage_usagedaytotal` from the daily rollup, as in production), filled
set-based in SQL, each step committed, and given every index the real tables have
after the load: `--orgs` organisations (a third
prepaid; four in five in EUR, the rest in USD; in Germany, the Netherlands and the US),
two servers each, for the `--months` whole months before the current one: the daily
usage rollup (one row per resource and day), the ledger (one usage entry per
organisation and day, a top-up a month for the prepaid, promotional credit granted and
expired, a few refunds, the postpaid's invoice payments), one invoice a month each (a
line per product, tax for Germany; statements for the prepaid; the postpaid's paid ten
days after issue, one in ten half paid, one in twenty left open, a few written off and
credited), their payments and failed attempts, and the journal those movements make
(in the shape `build_journal` books it, simplified: an entry per ledger movement, usage
per organisation and day), with a built `JournalDay` for every day and the journal's
daily totals (`JournalDayTotal`, by the statement `journal_build_day` runs). Then ANALYZE.

Timed: each spec of `finance.reports.registry.reports()` computed once for the whole
range by month (where it has months) with its default grouping, in the currency most
organisations bill in (EUR), as the console would,
then its `baseline` (the same figures by bare SQL, if the spec names one) in the same
run, both with `search_path` set to the benchmark's schema first, so every query of every
report reads the benchmark's tables. A line per report, then the figure.

Cleanup needs no superuser and disables no trigger: the schema is dropped (CASCADE), in a
`finally`, so a failed run leaves nothing either.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

from django.db import connection, transaction

SCHEMA = "bench_reports"  # also spelled out in the set-up's SQL
TABLES = (
    "accounts_organization", "accounts_auditlog", "pricing_productgroup", "pricing_product", "usage_resource",
    "usage_usagedaily", "credits_ledgerentry", "credits_balance", "credits_promogrant", "invoices_invoice",
    "invoices_invoiceline", "invoices_creditnote", "invoices_creditnoteline", "invoices_invoicepayment",
    "invoices_invoicepaymentreversal", "payments_payment", "payments_refund", "finance_account",
    "finance_movementaccount", "finance_journalday", "finance_journalentry", "finance_journalline",
    "finance_ledgerdayclose", "finance_journaldaytotal", "usage_usagedaytotal", "usage_usageorgmonth",
    "finance_journalorgmonth",
)
# Kept on the copies as on the real tables: the rollup's daily totals and its sums per
# organisation and month (usage migrations 0012 and 0014), maintained by these triggers
# while the set-up inserts the rollup rows; the journal's sums per organisation and month
# are upserted by the statement `journal_build_day` runs. Their upserts need their unique
# indexes from the start.
INDEXED_FIRST = {"usage_usagedaytotal", "usage_usageorgmonth", "finance_journalorgmonth"}
TRIGGERS = ("usage_daily_day_totals_insert", "usage_daily_day_totals_update", "usage_daily_day_totals_delete",
            "usage_daily_org_months_insert", "usage_daily_org_months_update", "usage_daily_org_months_delete")
_ZERO_BY_TYPE = {"text": "''", "character varying": "''", "integer": "0", "bigint": "0", "smallint": "0",
                 "numeric": "0", "boolean": "false", "timestamp with time zone": "now()", "date": "current_date",
                 "jsonb": "'{}'::jsonb", "uuid": "gen_random_uuid()", "double precision": "0"}


def add_arguments(parser):
    parser.add_argument("--orgs", type=int, default=10_000)
    parser.add_argument("--months", type=int, default=12)
    # For iterating on a report: the set-up of 10,000 organisations takes a quarter of an hour.
    parser.add_argument("--keep", action="store_true", help="Leave the benchmark's schema for a later --reuse.")
    parser.add_argument("--reuse", action="store_true",
                        help="Time the reports on the schema a --keep run left (same --orgs and --months).")


def _months_back(first: date, months: int) -> date:
    n = first.year * 12 + first.month - 1 - months
    return date(n // 12, n % 12 + 1, 1)


def _insert(cur, table: str, columns: dict[str, str], source: str, params: dict) -> int:
    """INSERT INTO the benchmark's `table` (columns: SQL expressions over `source`); the
    columns not named take the copies' defaults (`_setup_schema`)."""
    names = ", ".join(f'"{n}"' for n in columns)
    values = ", ".join(columns.values())
    cur.execute(f'INSERT INTO {SCHEMA}."{table}" ({names}) SELECT {values} {source}', params)  # noqa: S608 - ours
    return cur.rowcount


def _build(orgs: int, months: int, start: date, end: date, stdout) -> None:
    p = {"orgs": orgs, "start": datetime.combine(start, datetime.min.time(), tzinfo=UTC),
         "end": datetime.combine(end, datetime.min.time(), tzinfo=UTC), "d0": start, "d1": end}
    steps: list[tuple[str, str, dict[str, str], str]] = [
        ("organisations", "accounts_organization", {
            "id": "n", "name": "'Bench ' || n", "slug": "'bench-reports-' || n",
            "currency": "CASE WHEN n %% 5 = 0 THEN 'USD' ELSE 'EUR' END",
            "country": "CASE WHEN n %% 5 = 0 THEN 'US' WHEN n %% 2 = 0 THEN 'DE' ELSE 'NL' END",
            "billing_mode": "CASE WHEN n %% 3 = 0 THEN 'prepaid' ELSE 'postpaid' END", "payment_terms_days": "14",
            "is_active": "true",
            "created_at": "%(start)s"}, "FROM generate_series(1, %(orgs)s) n"),
        ("product groups", "pricing_productgroup", {"id": "g", "slug": "'bench-group-' || g", "name": "'Group ' || g"},
         "FROM generate_series(1, 2) g"),
        ("products", "pricing_product", {"id": "k", "group_id": "1 + k %% 2", "code": "'bench-' || k",
                                         "name": "'Bench product ' || k", "kind": "'server'",
                                         "billing_model": "'hourly'", "is_active": "true"},
         "FROM generate_series(1, 4) k"),
        ("resources", "usage_resource", {
            "id": "2 * n + r", "organization_id": "n", "external_id": "'bench-' || n || '-' || r",
            "product_id": "1 + (n + r) %% 4", "state": "'running'", "state_since": "%(start)s", "created_at": "%(start)s"},
         "FROM generate_series(1, %(orgs)s) n, generate_series(0, 1) r"),
        ("daily usage rollup", "usage_usagedaily", {
            "organization_id": "r.organization_id", "resource_id": "r.id", "product_id": "r.product_id",
            "state": "'running'", "price_id": "r.product_id", "currency": "o.currency", "minutes": "1440",
            "amount": "round((1 + r.id %% 7) * (1.5 + ((r.id * 31 + d.i) %% 17) / 8.0)::numeric, 12)", "day": "d.day"},
         "FROM bench_reports.usage_resource r JOIN bench_reports.accounts_organization o ON o.id = r.organization_id,"
         " LATERAL (SELECT day::date, (day::date - %(d0)s::date) AS i FROM generate_series(%(d0)s::date,"
         " %(d1)s::date - 1, interval '1 day') day) d"),
    ]
    with connection.cursor() as cur:
        for label, table, cols, source in steps:
            started = time.perf_counter()
            with transaction.atomic():
                rows = _insert(cur, table, cols, source, p)
            stdout.write(f"built {label}: {rows} rows in {time.perf_counter() - started:.1f}s\n")
        _build_money(cur, p, stdout)
        started = time.perf_counter()
        indexes = _index(cur)
        stdout.write(f"built {indexes} indexes in {time.perf_counter() - started:.1f}s\n")
        started = time.perf_counter()
        for table in TABLES:
            cur.execute(f"ANALYZE {SCHEMA}.{table}")
        stdout.write(f"analyzed in {time.perf_counter() - started:.1f}s\n")


def _build_money(cur, p: dict, stdout) -> None:
    # Each step one committed INSERT … SELECT (or a few), in the order money moves.
    sqls: list[tuple[str, str]] = [
        ("invoices", """
         INSERT INTO bench_reports.invoices_invoice (organization_id, period_start, period_end, status, number, currency,
             is_statement, subtotal, discount_total, tax_total, total, credit_applied, balance_forward, amount_due,
             amount_paid, tax_note, billing_details, seller_details, issued_at, due_at, paid_at, pdf, created_at,
             updated_at)
         SELECT u.organization_id, u.m, u.m + interval '1 month',
                CASE WHEN o.billing_mode = 'prepaid' THEN 'paid'
                     WHEN u.organization_id %% 97 = 0 AND u.m = %(start)s THEN 'uncollectible' ELSE 'open' END,
                'BR-' || u.organization_id || '-' || to_char(u.m, 'YYYYMM'), o.currency, o.billing_mode = 'prepaid',
                u.sub, 0, u.tax, u.sub + u.tax,
                CASE WHEN o.billing_mode = 'prepaid' THEN u.sub + u.tax ELSE 0 END, 0,
                CASE WHEN o.billing_mode = 'prepaid' THEN 0 ELSE u.sub + u.tax END,
                CASE WHEN o.billing_mode = 'prepaid' OR u.organization_id %% 20 = 0
                       OR u.m + interval '1 month 10 days' >= %(end)s OR (u.organization_id %% 97 = 0 AND u.m = %(start)s)
                     THEN 0 WHEN u.organization_id %% 10 = 1 THEN round((u.sub + u.tax) / 2, 2) ELSE u.sub + u.tax END,
                '', '{}', '{}', u.m + interval '1 month 2 hours', u.m + interval '1 month 14 days 2 hours',
                NULL, '', u.m + interval '1 month 2 hours', u.m + interval '1 month 2 hours'
         FROM (SELECT d.organization_id, date_trunc('month', d.day)::timestamptz AS m, round(SUM(d.amount), 2) AS sub,
                      round(round(SUM(d.amount), 2) * CASE WHEN MIN(o2.country) = 'DE' THEN 0.19 ELSE 0 END, 2) AS tax
               FROM bench_reports.usage_usagedaily d JOIN bench_reports.accounts_organization o2 ON o2.id = d.organization_id GROUP BY 1, 2) u
         JOIN bench_reports.accounts_organization o ON o.id = u.organization_id"""),
        ("invoice lines", """
         INSERT INTO bench_reports.invoices_invoiceline (invoice_id, position, kind, "group", description, product_code,
             product_id, state, unit, quantity, unit_price, amount, tax_rate, tax_amount, settled_by_metering)
         SELECT i.id, row_number() OVER (PARTITION BY i.id ORDER BY d.product_id), 'usage', '', 'Bench product',
                'bench-' || d.product_id, d.product_id, 'running', 'hour', SUM(d.minutes) / 60.0,
                round(SUM(d.amount) / (SUM(d.minutes) / 60.0), 12), round(SUM(d.amount), 2),
                CASE WHEN i.tax_total > 0 THEN 19 ELSE 0 END,
                round(round(SUM(d.amount), 2) * CASE WHEN i.tax_total > 0 THEN 0.19 ELSE 0 END, 2), true
         FROM bench_reports.invoices_invoice i
         JOIN bench_reports.usage_usagedaily d ON d.organization_id = i.organization_id
              AND date_trunc('month', d.day)::timestamptz = i.period_start
         GROUP BY i.id, i.tax_total, d.product_id"""),
        ("payments", """
         INSERT INTO bench_reports.payments_payment (organization_id, purpose, provider, flow, status, amount, currency,
             amount_refunded, invoice_id, provider_checkout_id, provider_payment_id, provider_charge_id, checkout_url,
             failure_code, failure_message, reference, dispute_reason, succeeded_at, failed_at, created_at)
         SELECT i.organization_id, 'invoice', CASE WHEN i.organization_id %% 4 = 0 THEN 'paypal' ELSE 'stripe' END,
                'off_session', 'succeeded', i.amount_paid, i.currency, 0, i.id, '', 'pi_' || i.id, '', '', '', '',
                'invoice:' || i.id, '', i.issued_at + interval '10 days', NULL, i.issued_at + interval '10 days'
         FROM bench_reports.invoices_invoice i WHERE NOT i.is_statement AND i.amount_paid > 0
         UNION ALL
         SELECT i.organization_id, 'invoice', 'stripe', 'off_session', 'failed', i.total, i.currency, 0, i.id, '',
                'pi_f' || i.id, '', '', 'card_declined', 'Your card was declined.', '', '', NULL,
                i.issued_at + interval '3 days', i.issued_at + interval '3 days'
         FROM bench_reports.invoices_invoice i WHERE NOT i.is_statement AND i.organization_id %% 7 = 0
         UNION ALL
         SELECT o.id, 'topup', 'stripe', 'off_session', 'succeeded', 400 + (o.id %% 10) * 50, o.currency, 0, NULL, '',
                'pi_t' || o.id || '_' || to_char(m, 'YYYYMM'), '', '', '', '', 'topup', '', m + interval '1 hour',
                NULL, m + interval '1 hour'
         FROM bench_reports.accounts_organization o, generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 month',
                                       interval '1 month') m
         WHERE o.billing_mode = 'prepaid'"""),
        ("invoice payments", """
         INSERT INTO bench_reports.invoices_invoicepayment (invoice_id, amount, currency, reference, received_at, created_at)
         SELECT invoice_id, amount, currency, 'payment:' || id, succeeded_at, succeeded_at FROM bench_reports.payments_payment
         WHERE purpose = 'invoice' AND status = 'succeeded'"""),
        ("invoices paid", """
         UPDATE bench_reports.invoices_invoice SET status = 'paid', paid_at = issued_at + interval '10 days'
         WHERE status = 'open' AND amount_paid = amount_due AND amount_due > 0"""),
        ("write-offs", """
         INSERT INTO bench_reports.accounts_auditlog (created_at, organization_id, action, object_type, object_id, reason,
                                            changes)
         SELECT i.issued_at + interval '100 days', i.organization_id, 'invoice.marked_uncollectible',
                'invoices.Invoice', i.id::text, 'Benchmark write-off', '{}'
         FROM bench_reports.invoices_invoice i WHERE i.status = 'uncollectible'"""),
        ("credit notes", """
         INSERT INTO bench_reports.invoices_creditnote (invoice_id, organization_id, number, currency, reason, subtotal,
             tax_total, total, issued_at, billing_details, seller_details, pdf)
         SELECT i.id, i.organization_id, 'BCN-' || i.id, i.currency, 'Benchmark credit', 10,
                CASE WHEN i.tax_total > 0 THEN 1.90 ELSE 0 END, CASE WHEN i.tax_total > 0 THEN 11.90 ELSE 10 END,
                i.issued_at + interval '5 days', '{}', '{}', ''
         FROM bench_reports.invoices_invoice i WHERE i.organization_id %% 40 = 0 AND i.total > 12 AND i.status = 'open'"""),
        ("ledger", """
         INSERT INTO bench_reports.credits_ledgerentry (organization_id, currency, kind, amount, promo_amount, balance_after,
                                              reason, reference, created_at)
         SELECT d.organization_id, d.currency, 'usage', -round(SUM(d.amount), 2), 0, 0, 'Usage', '',
                d.day + interval '23 hours 59 minutes'
         FROM bench_reports.usage_usagedaily d GROUP BY d.organization_id, d.currency, d.day
         UNION ALL
         SELECT organization_id, currency, 'topup', amount, 0, 0, 'Top-up', 'payment:' || id, succeeded_at
         FROM bench_reports.payments_payment WHERE purpose = 'topup'
         UNION ALL
         SELECT i.organization_id, i.currency, 'invoice_settlement', p.amount, 0, 0, 'Payment', 'invoice_payment:' || p.id,
                p.received_at
         FROM bench_reports.invoices_invoicepayment p JOIN bench_reports.invoices_invoice i ON i.id = p.invoice_id
         UNION ALL
         SELECT i.organization_id, i.currency, 'invoice_settlement', -i.tax_total, 0, 0, 'Invoice', 'invoice:' || i.id,
                i.issued_at
         FROM bench_reports.invoices_invoice i WHERE i.tax_total > 0
         UNION ALL
         SELECT c.organization_id, c.currency, 'adjustment', c.total, 0, 0, 'Credit note', 'credit_note:' || c.id,
                c.issued_at
         FROM bench_reports.invoices_creditnote c
         UNION ALL
         SELECT o.id, o.currency, k.kind, k.amount, k.amount, 0, 'Promotional credit', k.kind || ':' || o.id,
                %(start)s::timestamptz + k.after
         FROM bench_reports.accounts_organization o, (VALUES ('promo_grant', 20.00, interval '2 hours'),
                               ('promo_expiry', -20.00, interval '30 days')) k(kind, amount, after)
         WHERE o.id %% 9 = 0
         UNION ALL
         SELECT o.id, o.currency, 'refund', -25.00, 0, 0, 'Refund', 'refund:' || o.id,
                %(start)s::timestamptz + interval '150 days'
         FROM bench_reports.accounts_organization o WHERE o.billing_mode = 'prepaid' AND o.id %% 50 = 0"""),
        ("balances", """
         INSERT INTO bench_reports.credits_balance (organization_id, currency, amount, promo_amount, burn_rate_per_hour,
                                          warnings_sent, hibernated_resources, updated_at)
         SELECT organization_id, currency, SUM(amount), SUM(promo_amount), 0, '[]', '[]', now()
         FROM bench_reports.credits_ledgerentry GROUP BY 1, 2"""),
        ("journal days", """
         INSERT INTO bench_reports.finance_journalday (date, built_at, entries)
         SELECT day::date, now(), 0 FROM generate_series(%(d0)s::date, %(d1)s::date - 1, interval '1 day') day"""),
        ("journal entries", """
         INSERT INTO bench_reports.finance_journalentry (id, date, currency, movement, source, organization_id, document, text,
                                               created_at)
         SELECT l.id, (l.created_at AT TIME ZONE 'UTC')::date, l.currency,
                CASE l.kind WHEN 'invoice_settlement' THEN CASE WHEN l.amount > 0 THEN 'invoice_payment'
                                                                ELSE 'invoice' END
                            WHEN 'adjustment' THEN 'credit_note' ELSE l.kind END,
                'ledger:' || l.id, l.organization_id, '', l.reason, now()
         FROM bench_reports.credits_ledgerentry l WHERE l.created_at < %(end)s"""),
        ("journal lines", """
         INSERT INTO bench_reports.finance_journalline (entry_id, account_id, amount, organization_id)
         SELECT e.id, a.id, x.amount, x.org
         FROM bench_reports.finance_journalentry e
         JOIN bench_reports.credits_ledgerentry l ON l.id = e.id
         JOIN bench_reports.accounts_organization o ON o.id = l.organization_id
         CROSS JOIN LATERAL (VALUES
             (CASE WHEN l.kind IN ('promo_grant', 'promo_expiry') THEN 'promo_credit'
                   WHEN o.billing_mode = 'prepaid' THEN 'customer_credit' ELSE 'receivables' END, -l.amount, l.organization_id),
             (CASE l.kind WHEN 'usage' THEN 'usage_revenue' WHEN 'promo_grant' THEN 'promo_expense'
                          WHEN 'promo_expiry' THEN 'breakage' WHEN 'adjustment' THEN 'revenue'
                          WHEN 'invoice_settlement' THEN CASE WHEN l.amount > 0 THEN 'provider_clearing'
                                                              ELSE 'tax_payable' END
                          ELSE 'provider_clearing' END, l.amount, NULL::bigint)) x(role, amount, org)
         JOIN (SELECT DISTINCT ON (role) role, id FROM bench_reports.finance_account ORDER BY role, number) a
              ON a.role = x.role"""),
    ]
    from finance.journal import DAY_TOTALS_SQL, ORG_MONTH_SQL, org_month_args

    # The journal's daily totals and its sums per organisation and month by the statements
    # `journal_build_day` runs for its day (unqualified: `search_path` puts this schema first).
    sqls.append(("journal day totals", DAY_TOTALS_SQL))
    sqls.append(("journal sums per organisation and month", ORG_MONTH_SQL))
    for label, sql in sqls:
        started = time.perf_counter()
        args = p
        if sql is DAY_TOTALS_SQL:
            args = {**p, "start": p["d0"], "end": p["d1"]}
        elif sql is ORG_MONTH_SQL:
            args = org_month_args(p["d0"], p["d1"])
        with transaction.atomic():
            cur.execute(sql, args)
        stdout.write(f"built {label}: {cur.rowcount} rows in {time.perf_counter() - started:.1f}s\n")


def _index(cur) -> int:
    """Every index the real tables have (primary keys and unique constraints included, as
    unique indexes), built on the loaded copies."""
    cur.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY(%s)",
                [[t for t in TABLES if t not in INDEXED_FIRST]])
    definitions = [row[0] for row in cur.fetchall()]
    for definition in definitions:
        with transaction.atomic():
            cur.execute(definition.replace(" ON public.", f" ON {SCHEMA}.", 1))
    return len(definitions)


def _setup_schema() -> None:
    with connection.cursor() as cur, transaction.atomic():
        cur.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        cur.execute(f"CREATE SCHEMA {SCHEMA}")
        for table in TABLES:
            # Indexes come after the load (`_index`): one sort each instead of 7 million inserts.
            # The day totals keep theirs: the triggers' upsert needs its unique index.
            indexes = "" if table in INDEXED_FIRST else " EXCLUDING INDEXES"
            cur.execute(f'CREATE TABLE {SCHEMA}."{table}" (LIKE public."{table}" INCLUDING ALL{indexes})')
        # Django keeps defaults in Python: a NOT NULL column the set-up does not name gets
        # its type's zero as a column default, on the copies only.
        cur.execute("""SELECT table_name, column_name, data_type FROM information_schema.columns
                       WHERE table_schema = %s AND is_nullable = 'NO' AND column_default IS NULL
                         AND is_identity = 'NO'""", [SCHEMA])
        for table, column, kind in cur.fetchall():
            if kind in _ZERO_BY_TYPE:
                cur.execute(f'ALTER TABLE {SCHEMA}."{table}" ALTER COLUMN "{column}" SET DEFAULT {_ZERO_BY_TYPE[kind]}')
        cur.execute("SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'public.usage_usagedaily'::regclass"
                    " AND tgname = ANY(%s)", [list(TRIGGERS)])
        definitions = [row[0] for row in cur.fetchall()]
        if len(definitions) != len(TRIGGERS):
            raise RuntimeError("usage_usagedaily lacks its day-total triggers: run the migrations")
        for definition in definitions:
            # The function's table names are unqualified: `search_path` puts this schema first.
            cur.execute(definition.replace(" ON public.usage_usagedaily ", f" ON {SCHEMA}.usage_usagedaily ", 1))
        # The chart of accounts and the movement mapping as the migrations seeded them.
        cur.execute("INSERT INTO bench_reports.finance_account SELECT * FROM public.finance_account")
        cur.execute("INSERT INTO bench_reports.finance_movementaccount SELECT * FROM public.finance_movementaccount")


def _timed(fn, params) -> tuple[float, object]:
    started = time.perf_counter()
    out = fn(params)
    return time.perf_counter() - started, out


def run(options: dict, stdout) -> str:
    from django.utils import timezone

    from finance.reports.base import ReportParams
    from finance.reports.registry import reports

    orgs, months = options["orgs"], options["months"]
    end = timezone.now().astimezone(UTC).date().replace(day=1)
    start = _months_back(end, months)
    specs = reports()
    try:
        started = time.perf_counter()
        if options.get("reuse"):
            with connection.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", [SCHEMA])
                if not cur.fetchone()[0]:
                    raise RuntimeError(f"--reuse: no {SCHEMA} schema (run once with --keep)")
                cur.execute(f"SET search_path TO {SCHEMA}, public")
                cur.execute("SELECT count(*) FROM accounts_organization")
                stdout.write(f"reusing {SCHEMA}: {cur.fetchone()[0]} organisations\n")
        else:
            _setup_schema()
            with connection.cursor() as cur:
                cur.execute(f"SET search_path TO {SCHEMA}, public")
            _build(orgs, months, start, end, stdout)
            stdout.write(f"set-up: {time.perf_counter() - started:.1f}s for {orgs} organisations × {months} months "
                         f"[{start}, {end})\n")
        total = baseline_total = 0.0
        for name, spec in specs.items():
            # As the console opens it: by month where the report has months, its default grouping.
            params = ReportParams(start=start, end=end, currency="EUR",
                                  grain="month" if "month" in spec.grains else spec.grains[0],
                                  group_by=spec.group_by[0] if spec.group_by else None)
            seconds, report = _timed(spec.compute, params)
            total += seconds
            line = f"report {name}: {seconds:.3f}s, {len(report.rows)} rows"
            if spec.baseline is not None:
                b_seconds, _ = _timed(spec.baseline, params)
                baseline_total += b_seconds
                line += f"; baseline {b_seconds:.3f}s, ratio {seconds / b_seconds:.2f}" if b_seconds else ""
            else:
                line += "; no baseline"
            stdout.write(line + "\n")
    finally:
        with connection.cursor() as cur:
            cur.execute("SET search_path TO DEFAULT")
            if not options.get("keep"):
                cur.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    ratio = f"{total / baseline_total:.2f}" if baseline_total else "n/a"
    return (f"reports orgs={orgs} months={months} seconds={total:.3f} baseline_seconds={baseline_total:.3f} "
            f"ratio={ratio}")
