"""Routes: the root and the labelers' pages here, each other area in its own module, one namespace."""

from django.urls import include, path

from reviews.views import admin, common, labeler

app_name = "reviews"

urlpatterns = [
    path("", common.home, name="home"),
    path("campaigns/", common.campaigns, name="campaigns"),
    path("campaigns/<slug:slug>/", common.campaign_detail, name="campaign"),
    path("campaigns/<slug:slug>/rescore", admin.campaign_rescore, name="campaign_rescore"),
    # The labelers' pages. Lease ids are matched as strings so that a forged id gets a message, not a 404.
    path("work/", labeler.start, name="work_start"),
    path("campaigns/<slug:slug>/work/", labeler.work, name="work"),
    path("leases/<str:uid>/submit", labeler.submit, name="lease_submit"),
    path("leases/<str:uid>/skip", labeler.skip, name="lease_skip"),
    path("leases/<str:uid>/escalate", labeler.escalate, name="lease_escalate"),
    path("leases/<str:uid>/renew", labeler.renew, name="lease_renew"),
    path("history/", labeler.history, name="history"),
    # Each area keeps its routes in its own module, in this namespace.
    path("", include("reviews.urls.lead")),
    path("", include("reviews.urls.admin")),
    path("", include("reviews.urls.monitoring")),
    path("", include("reviews.urls.data")),
    path("", include("reviews.urls.datasets")),
]
