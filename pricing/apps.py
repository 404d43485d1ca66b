from django.apps import AppConfig


class PricingConfig(AppConfig):
    name = "pricing"
    # The OpenAPI tag of its operations (core.api.schema.area_tag).
    api_tag = "Pricing"
    api_tag_description = "Products, the price book, contracts and quotes."
