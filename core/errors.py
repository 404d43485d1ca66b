"""Domain errors raised by services. The API turns them into 4xx responses in the one
error format; the admin and the portal show their message to people."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the business was broken. Never a 5xx."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.field = field


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    """The request is valid but the current state forbids it (a bad state transition)."""

    status_code = 409
    code = "conflict"


class Forbidden(DomainError):
    """The caller may reach the object but their role does not allow this change."""

    status_code = 403
    code = "permission_denied"
