from django.urls import path

from invoices import views

app_name = "invoices"
urlpatterns = [
    path("", views.index, name="index"),
    path("current", views.interim, name="interim"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/pdf", views.pdf, name="pdf"),
]
