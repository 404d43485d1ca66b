import decimal

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core import checks  # noqa: F401 (registers the start-up checks)

        # One precision for every Decimal computation in every thread (see core.money).
        from core.money import DECIMAL_PRECISION

        decimal.DefaultContext.prec = DECIMAL_PRECISION
        decimal.DefaultContext.rounding = decimal.ROUND_HALF_UP
        decimal.setcontext(decimal.Context(prec=DECIMAL_PRECISION, rounding=decimal.ROUND_HALF_UP))
