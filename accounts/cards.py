from accounts.models import Invitation, Membership


def account_card(request, organization) -> dict:
    return {
        "template": "accounts/cards/account.html",
        "organization": organization,
        "member_count": Membership.objects.filter(organization=organization).count(),
        "pending_invitations": Invitation.objects.filter(
            organization=organization, accepted_at=None, revoked_at=None
        ).count(),
    }
