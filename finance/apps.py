from django.apps import AppConfig


class FinanceConfig(AppConfig):
    name = "finance"
    verbose_name = "Finance"
    # The OpenAPI tag of its operations (core.api.schema.area_tag).
    api_tag = "Finance"
    api_tag_description = ("Reports (one per registered report) and the journal's lines, for platform keys and "
                           "staff holding reports:read.")
