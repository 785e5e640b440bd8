"""URL routes of the admin area (included by reviews/urls/__init__.py in the "reviews" namespace)."""

from django.urls import path

from reviews.views import campaign_settings, gold, rubrics

urlpatterns = [
    path("rubrics/", rubrics.rubric_list, name="rubrics"),
    path("rubrics/new/", rubrics.rubric_new, name="rubric_new"),
    path("rubrics/<slug:slug>/", rubrics.rubric_detail, name="rubric"),
    path("rubrics/<slug:slug>/compare/", rubrics.rubric_compare, name="rubric_compare"),
    path("rubrics/<slug:slug>/notes/link", rubrics.note_link, name="rubric_note_link"),
    path("rubrics/<slug:slug>/draft/", rubrics.draft_edit, name="rubric_draft"),
    path("rubrics/<slug:slug>/draft/new", rubrics.draft_create, name="rubric_draft_create"),
    path("rubrics/<slug:slug>/draft/import/", rubrics.draft_import, name="rubric_draft_import"),
    path("rubrics/<slug:slug>/draft/publish/", rubrics.draft_publish, name="rubric_draft_publish"),
    path("rubrics/<slug:slug>/draft/discard", rubrics.draft_discard, name="rubric_draft_discard"),
    path("rubrics/<slug:slug>/v<int:number>/", rubrics.version_detail, name="rubric_version"),
    path("rubrics/<slug:slug>/v<int:number>/preview/", rubrics.version_preview, name="rubric_preview"),
    path("rubrics/<slug:slug>/v<int:number>.json", rubrics.version_export, name="rubric_export"),
    path(
        "rubrics/<slug:slug>/v<int:number>/requeue/<slug:campaign_slug>",
        rubrics.version_requeue,
        name="rubric_requeue",
    ),
    path("campaigns/<slug:slug>/settings/", campaign_settings.campaign_settings, name="campaign_settings"),
    path("campaigns/<slug:slug>/gold/", gold.gold_list, name="gold_list"),
    # External ids are the caller's strings (slashes included), so they come last, as a path.
    path("campaigns/<slug:slug>/gold/unmark/<path:external_id>", gold.gold_unmark, name="gold_unmark"),
    path("campaigns/<slug:slug>/gold/item/<path:external_id>", gold.gold_item, name="gold_item"),
]
