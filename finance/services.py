"""Writes to the chart of accounts other than staff's own edits in the console."""

from __future__ import annotations

from django.db import transaction

from accounts.audit import audit_record
from accounts.models import User
from finance.models import Account, AccountRole, AccountType

# Revenue accounts per product group take the free numbers 8201–8289 (8200 is the
# default revenue account, 8290 usage consumed).
GROUP_REVENUE_NUMBERS = range(8201, 8290)


@transaction.atomic
def accounts_add_group_revenue(*, actor: User | None = None) -> list[Account]:
    """A revenue account for every product group that has none, each numbered with the
    next free number of 8201–8289 and audited. Groups without an account book to the
    default revenue account (8200) until then."""
    from pricing.models import ProductGroup

    Account.objects.select_for_update().filter(role=AccountRole.REVENUE).exists()  # one writer at a time
    taken = set(Account.objects.values_list("number", flat=True))
    covered = set(Account.objects.filter(role=AccountRole.REVENUE, product_group__isnull=False)
                  .values_list("product_group_id", flat=True))
    free = (str(n) for n in GROUP_REVENUE_NUMBERS if str(n) not in taken)
    created = []
    for group in ProductGroup.objects.exclude(pk__in=covered).order_by("position", "name"):
        number = next(free, None)
        if number is None:
            break
        acct = Account.objects.create(number=number, name=f"Revenue {group.name}"[:100], type=AccountType.INCOME,
                                      role=AccountRole.REVENUE, product_group=group)
        audit_record("account.created", actor=actor, obj=acct, changes={"number": number, "product_group": group.pk})
        created.append(acct)
    return created
