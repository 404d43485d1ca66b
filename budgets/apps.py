from django.apps import AppConfig


class BudgetsConfig(AppConfig):
    name = "budgets"
    api_tag = "Budgets"
    api_tag_description = "Monthly budgets per organisation: alert thresholds on actual and forecast spend, hard caps."
