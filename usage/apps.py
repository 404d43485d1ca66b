from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"
    # The OpenAPI tag of its operations (core.api.schema.area_tag).
    api_tag = "Usage"
    api_tag_description = "Resources, their history, usage series and month to date; platform keys send lifecycle and metered events."

    def ready(self) -> None:
        from usage import checks  # noqa: F401  (registers the system checks)
