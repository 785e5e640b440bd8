"""URL routes of the lead area (included by reviews/urls.py in the "reviews" namespace)."""

urlpatterns: list = []
