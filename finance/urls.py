from django.urls import path

from finance import views

app_name = "finance"

urlpatterns = [
    path("journal.csv", views.journal_export_csv, name="journal_csv"),
    path("journal-datev.csv", views.journal_export_datev, name="journal_datev"),
    path("reports/", views.reports_index, name="reports"),
    path("reports/<slug:name>/", views.report_page, name="report"),
    path("reports/<slug:name>.csv", views.report_csv, name="report_csv"),
]
