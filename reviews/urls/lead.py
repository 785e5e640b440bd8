"""URL routes of the lead area (included by reviews/urls/__init__.py in the "reviews" namespace).

Escalation ids are matched as strings so that a malformed id gets the not-found page, not a
converter error.
"""

from django.urls import path

from reviews.views import lead

urlpatterns = [
    path("escalations/", lead.escalations, name="escalations"),
    path("campaigns/<slug:slug>/escalations/", lead.campaign_escalations, name="campaign_escalations"),
    path("escalations/<str:uid>/", lead.adjudicate_page, name="adjudicate"),
    path("escalations/<str:uid>/claim", lead.claim, name="escalation_claim"),
    path("escalations/<str:uid>/release", lead.release, name="escalation_release"),
    path("escalations/<str:uid>/resolve", lead.resolve, name="escalation_resolve"),
    path("escalations/<str:uid>/dismiss", lead.dismiss, name="escalation_dismiss"),
    path("escalations/<str:uid>/reopen", lead.reopen, name="escalation_reopen"),
    path("campaigns/<slug:slug>/adjudications/", lead.adjudications, name="adjudications"),
    path("campaigns/<slug:slug>/adjudications/revise", lead.revise, name="adjudication_revise"),
]
