from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Customers and access"
    # The OpenAPI tag of its operations (core.api.schema.area_tag).
    api_tag = "Organisation and keys"
    api_tag_description = "The organisation, its billing profile, members and API keys; platform keys also create organisations."

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        import accounts.api.schema  # noqa: F401 - registers the OpenAPI auth extensions
        import core.api.schema  # noqa: F401 - registers the strict-serializer extension
        from accounts.staff import sync_staff_groups

        # Staff groups are code: their permissions are re-synced after every migrate,
        # so a model added by a later app is covered without a data migration.
        post_migrate.connect(sync_staff_groups, dispatch_uid="accounts.sync_staff_groups")
