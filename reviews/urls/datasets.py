"""URL routes of the datasets area (included by reviews/urls/__init__.py in the "reviews" namespace)."""

from django.urls import path

from reviews.views import datasets, tokens

urlpatterns = [
    path("campaigns/<slug:slug>/datasets/", datasets.datasets, name="datasets"),
    path("datasets/<uuid:uid>/download", datasets.dataset_download, name="dataset_download"),
    path("api-tokens/", tokens.api_tokens, name="api_tokens"),
    path("api-tokens/revoke", tokens.api_token_revoke, name="api_token_revoke"),
]
