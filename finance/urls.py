from django.urls import path

from finance import views

app_name = "finance"

urlpatterns = [
    path("journal.csv", views.journal_export_csv, name="journal_csv"),
    path("journal-datev.csv", views.journal_export_datev, name="journal_datev"),
]
