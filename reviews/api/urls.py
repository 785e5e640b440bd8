"""Routes of /api/v1/ (namespace "api")."""

from django.urls import path

from reviews.api import views

app_name = "api"

urlpatterns = [
    path("schema", views.schema, name="schema"),
    path("campaigns/<slug:slug>", views.campaign_detail, name="campaign"),
    path("campaigns/<slug:slug>/items", views.campaign_items, name="campaign_items"),
    path("campaigns/<slug:slug>/datasets", views.campaign_datasets, name="campaign_datasets"),
    path("datasets/<uuid:uid>", views.dataset_detail, name="dataset"),
    path("datasets/<uuid:uid>/download", views.dataset_download, name="dataset_download"),
]
