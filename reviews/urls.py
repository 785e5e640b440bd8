from django.urls import path

from reviews.views import admin, common

app_name = "reviews"

urlpatterns = [
    path("", common.home, name="home"),
    path("campaigns/", common.campaigns, name="campaigns"),
    path("campaigns/<slug:slug>/", common.campaign_detail, name="campaign"),
    path("campaigns/<slug:slug>/rescore", admin.campaign_rescore, name="campaign_rescore"),
]
