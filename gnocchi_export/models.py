"""The export's watermark: one row per export target (docs/usage.md, "History export to Gnocchi")."""

from __future__ import annotations

from django.db import models


class GnocchiExport(models.Model):
    """Where the export to one Gnocchi stands: every metering run with an id up to
    `run_id` is in Gnocchi (its rated spans' per-resource totals were accepted with a 2xx).
    Moved forward only after Gnocchi answered, and only from the value it was read at
    (compare and set), so a Gnocchi outage loses nothing and a rollback of ours only sends
    a batch again, which overwrites the same points with the same values."""

    name = models.CharField(max_length=40, unique=True, default="default")
    run_id = models.BigIntegerField(default=0, help_text="Every metering run with an id up to this one is exported.")
    exported_at = models.DateTimeField(null=True, blank=True)
    measures = models.BigIntegerField(default=0, help_text="Measures sent so far (a batch sent again counts again).")

    class Meta:
        verbose_name = "Gnocchi export"

    def __str__(self) -> str:
        return f"{self.name}: runs up to {self.run_id}"
