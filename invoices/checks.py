"""Start-up checks (`manage.py check`, run by runserver and migrate): billing refuses to
start rather than bill from a source it cannot read."""

from __future__ import annotations

from django.core import checks

from invoices import sources


@checks.register("invoices")
def check_sources(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Every model invoices read (`invoices.sources.SOURCE_MODELS`) is installed."""
    errors = []
    for label in sources.SOURCE_MODELS:
        try:
            sources.source_model(label)
        except sources.SourceMissing as exc:
            errors.append(checks.Error(
                str(exc), id="invoices.E001", obj="invoices.sources",
                hint="Point invoices/sources.py at the model's new name; bills read from it.",
            ))
    return errors
