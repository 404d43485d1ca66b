"""Every write to the price book: keyword-only, one transaction, one audit row.

The past is never rewritten: a price or contract that has taken effect may only be ended
(from now on), and a new one starts where it ends. Prices and contracts that have not
started yet may be changed or cancelled. `now` is a parameter so that demo data and tests
can load history; callers in the API and the console never pass it.

By topic: `products` (the catalogue), `prices` (effective-dated list prices),
`contracts` (an organisation's overrides over a period), and `common` (the checks and
audit they share). The public names are re-exported here, so callers write
`pricing.services.price_create(…)`; a test that patches one patches it in its topic
module.
"""

from pricing.services.contracts import (
    OverrideSpec,
    contract_cancel,
    contract_check,
    contract_create,
    contract_end,
    contract_end_check,
)
from pricing.services.prices import (
    PRICING_MODELS_FOR_BILLING_MODEL,
    UNITS_FOR_BILLING_MODEL,
    PriceSpec,
    default_unit,
    price_cancel,
    price_check,
    price_create,
    price_end,
    price_end_check,
    price_reschedule,
)
from pricing.services.products import PRODUCT_FIELDS, product_check, product_create, product_update

__all__ = [
    "PRICING_MODELS_FOR_BILLING_MODEL",
    "PRODUCT_FIELDS",
    "UNITS_FOR_BILLING_MODEL",
    "OverrideSpec",
    "PriceSpec",
    "contract_cancel",
    "contract_check",
    "contract_create",
    "contract_end",
    "contract_end_check",
    "default_unit",
    "price_cancel",
    "price_check",
    "price_create",
    "price_end",
    "price_end_check",
    "price_reschedule",
    "product_check",
    "product_create",
    "product_update",
]
