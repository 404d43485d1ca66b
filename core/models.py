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
