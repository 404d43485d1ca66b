from urllib.parse import urlencode

from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from accounts import two_factor
from accounts.tenancy import current_membership
from core.formatting import zone

# Pages a session owing its second factor may still open: the step itself, enrolment
# (which sends a person who has a device to the step), and signing out.
TWO_FACTOR_OPEN_VIEWS = frozenset({"two_factor_verify", "two_factor_enrol", "logout", "admin:logout"})


class CurrentOrganizationMiddleware:
    """`request.membership`: the portal's current organisation, resolved on first use."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.membership = SimpleLazyObject(lambda: current_membership(request))
        return self.get_response(request)


class UserTimeZoneMiddleware:
    """Times on a signed-in person's pages are in their own zone (User.time_zone, default
    UTC); everyone else, and every document and email (core.formatting.document_time),
    sees UTC. Each `when`/format_datetime names the zone it shows."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        name = getattr(user, "time_zone", "") if user is not None and user.is_authenticated else ""
        if name:
            timezone.activate(zone(name))
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


class TwoFactorMiddleware:
    """Sends a session that owes a second factor to the code step, and one whose person
    must use two-factor but has no device to enrolment, before any other page, the
    console included. The API answers such a session itself (403, in its error format:
    accounts.api.authentication), since a request there may carry a key instead."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if match is None or match.view_name in TWO_FACTOR_OPEN_VIEWS or match.route.startswith("api/"):
            return None
        step = two_factor.pending_step(request)
        if step is None:
            return None
        target = reverse("two_factor_verify" if step == two_factor.VERIFY else "two_factor_enrol")
        return redirect(f"{target}?{urlencode({'next': request.get_full_path()})}")
