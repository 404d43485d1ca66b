"""The chart of accounts as the journal reads it: one load per built day, then every
account a movement needs is found by role and qualifier. A role with no account at all
is a `JournalError` naming it (the journal never books to nowhere)."""

from __future__ import annotations

from decimal import Decimal

from finance.models import Account, AccountRole, Movement, MovementAccount


class JournalError(Exception):
    """The journal cannot book a movement as the chart and its sources stand."""


class Chart:
    def __init__(self) -> None:
        self.accounts = list(Account.objects.all())
        self.by_movement = {m.movement: m.account for m in MovementAccount.objects.select_related("account")}

    def _one(self, role: str, **qualifiers: object) -> Account | None:
        for acct in self.accounts:
            if acct.role == role and all(getattr(acct, k) == v for k, v in qualifiers.items()):
                return acct
        return None

    def default(self, role: str) -> Account:
        acct = self._one(role, provider="", product_group_id=None, tax_country="", tax_rate=None)
        if acct is None:
            raise JournalError(f"The chart of accounts has no {AccountRole(role).label} account.")
        return acct

    def counter(self, movement: str) -> Account:
        try:
            return self.by_movement[movement]
        except KeyError:
            raise JournalError(f"No account is mapped to the movement {Movement(movement).label!r}.") from None

    def customer(self, *, prepaid: bool) -> Account:
        return self.default(AccountRole.CUSTOMER_CREDIT if prepaid else AccountRole.RECEIVABLES)

    def clearing(self, provider: str) -> Account:
        acct = self._one(AccountRole.PROVIDER_CLEARING, provider=provider)
        if acct is None:
            raise JournalError(f"The chart of accounts has no clearing account for the provider {provider!r}.")
        return acct

    def revenue(self, product_group_id: int | None) -> Account:
        if product_group_id is not None:
            acct = self._one(AccountRole.REVENUE, product_group_id=product_group_id)
            if acct is not None:
                return acct
        return self.default(AccountRole.REVENUE)

    def tax(self, country: str, rate: Decimal) -> Account:
        """The account of (country, rate), else the default tax account."""
        for acct in self.accounts:
            if (acct.role == AccountRole.TAX_PAYABLE and acct.tax_country == country
                    and acct.tax_rate is not None and acct.tax_rate == rate):
                return acct
        return self.default(AccountRole.TAX_PAYABLE)
