from django.urls import path
from rest_framework.routers import SimpleRouter

from usage.api import views

router = SimpleRouter(trailing_slash=False)
router.register("resources", views.ResourceViewSet, basename="resource")
router.register("projects", views.ProjectViewSet, basename="project")

urlpatterns = [
    path("events", views.EventsView.as_view(), name="events"),
    path("usage", views.UsageView.as_view(), name="usage"),
    path("usage/month-to-date", views.MonthToDateView.as_view(), name="usage-month-to-date"),
    path("spend", views.SpendView.as_view(), name="spend"),
    path("spend/forecast", views.SpendForecastView.as_view(), name="spend-forecast"),
    *router.urls,
]
