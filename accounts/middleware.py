from django.utils.functional import SimpleLazyObject

from accounts.tenancy import current_membership


class CurrentOrganizationMiddleware:
    """`request.membership`: the portal's current organisation, resolved on first use."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.membership = SimpleLazyObject(lambda: current_membership(request))
        return self.get_response(request)
