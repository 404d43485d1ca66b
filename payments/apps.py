from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    # The OpenAPI tag of its operations (core.api.schema.area_tag).
    api_tag = "Payments"
    api_tag_description = "Payments received and refunds."
