from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"
    api_tag = "Webhooks"
    api_tag_description = (
        "Outbound webhooks (Standard Webhooks): endpoints, the event catalogue, the delivery log and replays. "
        "Organisations manage their own endpoints; platform keys also manage platform-wide ones.")
