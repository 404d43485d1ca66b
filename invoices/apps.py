from django.apps import AppConfig


class InvoicesConfig(AppConfig):
    name = "invoices"

    def ready(self) -> None:
        from invoices import checks  # noqa: F401 - registers the start-up checks
