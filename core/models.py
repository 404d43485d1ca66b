from django.db import models


class IdempotencyRecord(models.Model):
    """A POST made with an `Idempotency-Key` and the response it produced.

    Created in the same transaction as the request's own writes, so a record exists
    if and only if the effects committed. The unique (caller, key) index makes a
    concurrent duplicate wait for the first request and then replay its response.
    """

    caller = models.CharField(max_length=100, help_text="Who made the request: api key or user id.")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["caller", "key"], name="idempotency_caller_key_uniq")]

    def __str__(self) -> str:
        return f"{self.caller} {self.key}"


class OutboxMessage(models.Model):
    """A task to send to the broker, written in the same transaction as the rows it is
    about (core.outbox). It exists if and only if they committed; it is sent right after
    commit and, while the broker is down, by the relay once it is back."""

    task = models.CharField(max_length=200, help_text="The Celery task's name.")
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_until = models.DateTimeField(null=True, blank=True,
                                         help_text="A sender holds the message until then.")
    sent_at = models.DateTimeField(null=True, blank=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [models.Index(fields=["id"], condition=models.Q(sent_at__isnull=True), name="core_outbox_unsent")]

    def __str__(self) -> str:
        return f"{self.task}{tuple(self.args)}"
