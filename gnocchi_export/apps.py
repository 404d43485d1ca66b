from django.apps import AppConfig


class GnocchiExportConfig(AppConfig):
    name = "gnocchi_export"
    verbose_name = "History export to Gnocchi"
