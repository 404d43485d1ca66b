"""The invoice tasks retry what is transient, with the backoff they say they use."""

from __future__ import annotations

import pytest

from invoices import rendering, tasks


class Retried(Exception):
    pass


@pytest.fixture
def retries(monkeypatch):
    """Record each task.retry(...) call instead of scheduling it."""
    calls: list[dict] = []

    def _patch(task):
        def retry(*args, **kwargs):
            calls.append(kwargs)
            raise Retried

        monkeypatch.setattr(task, "retry", retry)
        return calls

    return _patch


def test_a_pdf_that_fails_to_store_is_retried_with_backoff(monkeypatch, retries):
    # It declared max_retries=5 and never retried: one storage hiccup meant no PDF until
    # an email or a download happened to render it.
    calls = retries(tasks.invoice_render_pdf_task)

    def broken(*, invoice_id):
        raise OSError("disk full")

    monkeypatch.setattr(rendering, "invoice_ensure_pdf", broken)
    with pytest.raises(Retried):
        tasks.invoice_render_pdf_task(7)
    assert calls and calls[0]["countdown"] == 60 and isinstance(calls[0]["exc"], OSError)


def test_an_organisation_that_failed_is_retried_with_growing_delays(monkeypatch, retries):
    # retry_backoff only applies to autoretry_for; this task retries by hand, so every
    # retry used to wait Celery's default 180 s.
    calls = retries(tasks.invoice_organization_task)

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(tasks.engine, "invoice_organization", broken)
    with pytest.raises(Retried):
        tasks.invoice_organization_task(1, 2)
    assert calls[0]["countdown"] == 60
    assert [tasks.backoff(n) for n in range(8)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]
