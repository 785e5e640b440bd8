"""Routes of /api/v1/ (namespace "api")."""

app_name = "api"

urlpatterns: list = []
