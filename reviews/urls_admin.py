"""URL routes of the admin area (included by reviews/urls.py in the "reviews" namespace)."""

urlpatterns: list = []
