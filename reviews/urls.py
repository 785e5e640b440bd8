from django.urls import path

from reviews.views import common

app_name = "reviews"

urlpatterns = [
    path("", common.home, name="home"),
]
