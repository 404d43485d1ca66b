"""Smoke test of `manage.py benchmark admission` at a tiny size: gunicorn, paced HTTP,
the baseline and the cleanup run, and the last line has the issue's format. No timing is
asserted (speed is measured by the benchmark, never in tests)."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command

from accounts.models import Organization
from credits.models import AdmissionPolicy, Balance
from pricing.models import Product
from usage.models import AccrualRate


@pytest.mark.django_db(transaction=True)
def test_the_admission_benchmark_runs_at_a_tiny_size_and_cleans_up():
    out = io.StringIO()
    call_command("benchmark", "admission", "--requests", "40", "--rate", "50", "--orgs", "25", "--workers", "1",
                 "--clients", "2", stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert re.match(r"40 requests at 50/s from 2 connections to 1 gunicorn workers: 40 answered, \d+ refused, "
                    r"0 failed", lines[0]), lines
    assert re.fullmatch(r"admission requests=40 p95_ms=[\d.]+ baseline_p95_ms=[\d.]+ ratio=[\d.]+", lines[-1])
    assert not Organization.objects.filter(slug__startswith="ba").exists()
    assert not (Balance.objects.exists() or AccrualRate.objects.exists() or AdmissionPolicy.objects.exists())
    assert not Product.objects.filter(code__startswith="ba").exists()
