"""URL routes of the data area (included by reviews/urls.py in the "reviews" namespace)."""

urlpatterns: list = []
