"""Thin tasks, safe to run twice (acks_late is global)."""

from __future__ import annotations

from celery import shared_task

from budgets import services


@shared_task(name="budgets.evaluate", soft_time_limit=240, time_limit=290)
def budgets_evaluate_task() -> int:
    return services.evaluate_all()


@shared_task(name="budgets.alert_email", soft_time_limit=60, time_limit=90, autoretry_for=(OSError,),
             retry_backoff=True, max_retries=8)
def budgets_alert_email_task(alert_id: int) -> int:
    return services.alert_email(alert_id)
