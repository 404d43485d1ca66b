"""What invoices read from other apps: a source that is not there stops billing loudly,
at start-up and at use, instead of billing zero; and the reading module only reads."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from accounts.tests.factories import OrganizationFactory
from invoices import engine, sources
from invoices.tests.helpers import utc

pytestmark = pytest.mark.django_db
OCT = engine.period_for("2026-10")


@pytest.fixture
def usage_hourly_renamed(monkeypatch):
    """The app registry as it would be after usage renamed its hourly rollup."""
    real = apps.get_model

    def get_model(app_label, model_name=None, require_ready=True):
        label = app_label if model_name is None else f"{app_label}.{model_name}"
        if label.lower() == "usage.usagehourly":
            raise LookupError(f"App 'usage' doesn't have a '{label.split('.')[1]}' model.")
        return real(app_label, model_name, require_ready=require_ready)

    monkeypatch.setattr(apps, "get_model", get_model)


def test_a_missing_source_model_stops_the_monthly_run_instead_of_billing_nobody(usage_hourly_renamed):
    with pytest.raises(ImproperlyConfigured, match="usage.UsageHourly"):
        engine.invoice_run_start(period=OCT, now=utc(2026, 11, 1, 2), dispatch=False)


def test_a_missing_source_model_stops_an_interim_invoice_instead_of_showing_zero(usage_hourly_renamed):
    org = OrganizationFactory()
    with pytest.raises(ImproperlyConfigured, match="usage.UsageHourly"):
        engine.interim_bill(organization=org, until=utc(2026, 10, 10), now=utc(2026, 10, 10))


def test_a_missing_source_model_is_refused_at_start_up(usage_hourly_renamed):
    with pytest.raises(SystemCheckError, match=r"invoices\.E001.*usage\.UsageHourly"):
        call_command("check")


def test_every_source_model_resolves_today():
    call_command("check")  # raises SystemCheckError on any error


def test_a_model_not_declared_as_a_source_is_not_read():
    with pytest.raises(sources.SourceMissing, match="SOURCE_MODELS"):
        sources.source_model("usage.StateInterval")  # usage.Resource is one since issue 19 (projects)


def test_the_sources_module_only_reads():
    """Writes go through services (house style): sources.py imports none."""
    tree = ast.parse(Path(sources.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert sorted(m for m in imported if m.rsplit(".", 1)[-1] == "services") == []
