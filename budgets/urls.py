from django.urls import path

from budgets import views

app_name = "budgets"
urlpatterns = [
    path("", views.index, name="index"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/delete", views.delete, name="delete"),
]
