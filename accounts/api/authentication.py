from __future__ import annotations

from rest_framework import authentication, exceptions

from accounts import two_factor
from accounts.models import ApiKey
from accounts.services import api_key_authenticate


class ApiKeyUser:
    """`request.user` for a request made with an API key: authenticated, not a person."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key

    def __str__(self) -> str:
        return f"api key {self.api_key.display_prefix}"

    def has_perm(self, perm: str, obj=None) -> bool:
        return False


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, raw = header.partition(" ")
        if keyword.lower() != self.keyword.lower():
            return None
        raw = raw.strip()
        if not raw:
            raise exceptions.AuthenticationFailed("No API key after 'Bearer'.")
        key = api_key_authenticate(raw)
        if key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        return ApiKeyUser(key), key

    def authenticate_header(self, request) -> str:
        return self.keyword


class TwoFactorRequired(exceptions.PermissionDenied):
    default_code = "two_factor_required"
    default_detail = "This session has not passed two-factor sign-in: finish signing in in the portal."


class SessionAuthentication(authentication.SessionAuthentication):
    """The portal's session, with CSRF enforced on unsafe methods (DRF's default). A
    session that owes its second factor (or an enrolment) is refused: 403."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None and two_factor.pending_step(request._request) is not None:
            raise TwoFactorRequired()
        return result
