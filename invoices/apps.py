from django.apps import AppConfig


class InvoicesConfig(AppConfig):
    name = "invoices"
    # The OpenAPI tag of its operations (core.api.schema.area_tag).
    api_tag = "Invoices"
    api_tag_description = "Invoices, this month's interim invoice, credit notes and their PDFs."

    def ready(self) -> None:
        from invoices import checks  # noqa: F401 - registers the start-up checks
