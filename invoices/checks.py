"""Start-up checks (`manage.py check`, run by runserver and migrate): billing refuses to
start rather than bill from a source it cannot read or with steps out of order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from invoices import pipeline, sources


@checks.register("invoices")
def check_sources(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every model invoices read (`invoices.sources.SOURCE_MODELS`) is installed."""
    errors: list[checks.CheckMessage] = []
    for label in sources.SOURCE_MODELS:
        try:
            sources.source_model(label)
        except sources.SourceMissing as exc:
            errors.append(checks.Error(
                str(exc), id="invoices.E001", obj="invoices.sources",
                hint="Point invoices/sources.py at the model's new name; bills read from it.",
            ))
    return errors


@checks.register("invoices")
def check_pipelines(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every billing pipeline, the derived ones included, loads and runs each step after
    the steps providing what it requires (`invoices.pipeline`)."""
    names = [n for n in settings.BILLING_PIPELINES if n not in pipeline.DERIVED] + list(pipeline.DERIVED)
    errors: list[checks.CheckMessage] = []
    for name in names:
        obj = f"BILLING_PIPELINES[{name!r}]"
        try:
            paths = pipeline.pipeline_paths(name)
            problems = pipeline.order_problems(paths)
        except (ImproperlyConfigured, ImportError, KeyError) as exc:
            problems = [("invoices.E002", exc.args[0] if exc.args else str(exc))]
        errors += [checks.Error(message, id=check_id, obj=obj) for check_id, message in problems]
    return errors
