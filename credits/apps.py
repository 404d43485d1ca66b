from django.apps import AppConfig


class CreditsConfig(AppConfig):
    name = "credits"
    # The OpenAPI tag of its operations (core.api.schema.area_tag).
    api_tag = "Credits"
    api_tag_description = "Prepaid balance, its ledger, top-ups, auto top-up, promotional grants and hibernation."

    def ready(self) -> None:
        from credits import checks  # noqa: F401  (registers the system checks)
