app_name = "pricing"
urlpatterns: list = []
