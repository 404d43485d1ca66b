from django.urls import path

from usage import sandbox, views

app_name = "usage"
urlpatterns = [
    path("", views.index, name="index"),
    path("export.csv", views.export, name="export"),
    path("spend/", views.spend_explorer, name="spend"),
    path("resources/<int:pk>/", views.resource_detail, name="resource"),
    path("resources/<int:pk>/tags", views.resource_tags, name="resource_tags"),
    path("projects/", views.projects, name="projects"),
    path("projects/<int:pk>/rename", views.project_rename, name="project_rename"),
    path("spend.csv", views.spend_export, name="spend_export"),
    path("sandbox/start", sandbox.start, name="sandbox_start"),
    path("sandbox/<int:pk>/stop", sandbox.stop, name="sandbox_stop"),
]
