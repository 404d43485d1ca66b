from django.urls import path

from webhooks import views

app_name = "webhooks"
urlpatterns = [
    path("", views.index, name="index"),
    path("<int:pk>/", views.endpoint, name="endpoint"),
    path("<int:pk>/rotate", views.rotate, name="rotate"),
    path("<int:pk>/test", views.send_test, name="test"),
    path("<int:pk>/replay", views.replay, name="replay"),
    path("<int:pk>/toggle", views.toggle, name="toggle"),
    path("<int:pk>/delete", views.delete, name="delete"),
    path("deliveries/<int:pk>/", views.delivery, name="delivery"),
    path("deliveries/<int:pk>/replay", views.delivery_replay, name="delivery_replay"),
]
