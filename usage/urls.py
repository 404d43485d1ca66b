from django.urls import path

from usage import views

app_name = "usage"
urlpatterns = [
    path("", views.index, name="index"),
    path("export.csv", views.export, name="export"),
]
