"""URL routes of the monitoring area (included by reviews/urls/__init__.py in the "reviews" namespace)."""

from django.urls import path

from reviews.views import dashboards

urlpatterns: list = [
    path("dashboards/", dashboards.dashboards, name="dashboards"),
    path("dashboards/<slug:slug>/", dashboards.dashboard, name="dashboard"),
    path("dashboards/<slug:slug>/snapshot", dashboards.dashboard_snapshot, name="dashboard_snapshot"),
    path("dashboards/<slug:slug>/series/", dashboards.dashboard_series, name="dashboard_series"),
    path(
        "dashboards/<slug:slug>/<slug:page>/<slug:table>.<str:fmt>",
        dashboards.dashboard_download,
        name="dashboard_download",
    ),
    path("dashboards/<slug:slug>/<slug:page>/", dashboards.dashboard_page, name="dashboard_page"),
]
