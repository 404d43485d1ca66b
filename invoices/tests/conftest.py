import pytest

from invoices.pipeline import _load
from invoices.tests import fakes

GATHER = "invoices.handlers.gather.GatherCharges"
FAKE = "invoices.tests.fakes.FixtureCharges"


@pytest.fixture
def fixture_pipeline(settings, monkeypatch):
    """The real pipeline with its first step (and the run's pre-filter) fed from
    `fakes.INPUTS` instead of usage's tables."""
    from invoices import sources

    monkeypatch.setattr(sources, "organizations_with_charges",
                        lambda ids, start, end: {i for i in fakes.INPUTS if ids is None or i in ids})
    settings.BILLING_PIPELINES = {
        name: [FAKE if h == GATHER else h for h in steps] for name, steps in settings.BILLING_PIPELINES.items()
    }
    fakes.INPUTS.clear()
    _load.cache_clear()
    yield fakes.INPUTS
    fakes.INPUTS.clear()
    _load.cache_clear()


@pytest.fixture
def ledger(monkeypatch):
    """The credit ledger as the credits contract describes it (balance per organisation,
    `ledger_post` idempotent on reference), in memory, until credits lands on main."""
    from decimal import Decimal

    from invoices import sources

    state = {"balances": {}, "posts": []}

    def balances(ids):
        return {i: state["balances"][i] for i in ids if i in state["balances"]}

    def post(*, organization, amount, kind, reason, reference):
        if any(p["reference"] == reference for p in state["posts"]):
            return
        state["posts"].append({"org": organization.pk, "amount": amount, "kind": kind, "reference": reference})
        state["balances"][organization.pk] = state["balances"].get(organization.pk, Decimal(0)) + amount

    monkeypatch.setattr(sources, "credit_balances", balances)
    monkeypatch.setattr(sources, "ledger_post", post)
    return state
