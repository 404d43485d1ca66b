app_name = "usage"
urlpatterns: list = []
