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
def ledger(db):
    """The real credit ledger: `ledger.set(org, amount)` posts what takes the balance
    there; `ledger.balance(org)` and `ledger.entries(org)` read it back."""
    return Ledger()


class Ledger:
    def set(self, org, amount):
        from credits.services import ledger_post

        ledger_post(organization=org, amount=amount - self.balance(org), kind="adjustment",
                    reason="test set-up", reference=f"test:set:{org.pk}:{amount}")

    def draw(self, org, amount, reference="metering"):
        """What credits' sync does after metering: draw usage from the balance."""
        from credits.services import ledger_post

        ledger_post(organization=org, amount=-amount, kind="usage", reason="test metering",
                    reference=f"test:{reference}:{org.pk}")

    def balance(self, org):
        from decimal import Decimal

        from credits.models import Balance

        return Balance.objects.filter(organization=org).values_list("amount", flat=True).first() or Decimal(0)

    def entries(self, org):
        from credits.models import LedgerEntry

        return list(LedgerEntry.objects.filter(organization=org).exclude(reason__in=["test set-up", "test metering"])
                    .order_by("id").values_list("kind", "amount", "reference"))
