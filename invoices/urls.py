from django.urls import path

from invoices import credit_note_views, history, views

app_name = "invoices"
urlpatterns = [
    path("", views.index, name="index"),
    path("current", views.interim, name="interim"),
    path("export.csv", history.export_csv, name="export_csv"),
    path("<int:year>/pdfs.zip", history.year_pdfs, name="year_pdfs"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/pdf", views.pdf, name="pdf"),
    path("credit-notes/<int:pk>/", credit_note_views.detail, name="credit_note"),
    path("credit-notes/<int:pk>/pdf", credit_note_views.pdf, name="credit_note_pdf"),
]
