"""Kept so `{% load credits_money %}` still works: the filters are core's, builtins of the
template engine (core/templatetags/formats.py)."""

from core.templatetags.formats import register

__all__ = ["register"]
