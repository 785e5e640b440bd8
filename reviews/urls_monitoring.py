"""URL routes of the monitoring area (included by reviews/urls.py in the "reviews" namespace)."""

urlpatterns: list = []
