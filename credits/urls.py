from django.urls import path

from credits import views

app_name = "credits"
urlpatterns = [
    path("", views.index, name="index"),
    path("ledger.csv", views.ledger_csv, name="ledger_csv"),
    path("auto-top-up", views.auto_topup, name="auto_topup"),
    path("resume", views.resume, name="resume"),
]
