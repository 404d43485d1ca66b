from rest_framework.routers import SimpleRouter

from budgets.api import views

router = SimpleRouter(trailing_slash=False)
router.register("budgets", views.BudgetViewSet, basename="budget")

urlpatterns = router.urls
