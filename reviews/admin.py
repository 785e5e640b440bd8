"""The Django admin, for support: look things up, fix the odd draft; history stays untouched.

Every human decision (leases, judgments, answers, escalations, adjudications) and the pool
itself change only through the app's flows, which write FeedbackEvents: here they are read-only.

Large tables (items, responses, judgments, answers, events) use raw id widgets, exact-match
search and no full result count, so a changelist never loads or counts 100k rows for a widget.
"""

from django.contrib import admin

from reviews.models import (
    Adjudication,
    Annotator,
    Answer,
    ApiToken,
    Assignment,
    Campaign,
    CampaignSettings,
    DatasetVersion,
    Escalation,
    FeedbackEvent,
    FinalAnswer,
    Item,
    ItemScore,
    Judgment,
    Membership,
    MetricSnapshot,
    Prompt,
    Response,
    Rubric,
    RubricVersion,
    ScoringRun,
)

admin.site.site_header = "Review desk support"
admin.site.site_title = "Review desk support"
admin.site.index_title = "Support"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that are history or derived data: viewable, never added, changed or deleted here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LargeTableAdmin(admin.ModelAdmin):
    show_full_result_count = False
    list_per_page = 50


@admin.register(Rubric)
class RubricAdmin(admin.ModelAdmin):
    list_display = ("slug", "title", "created_at")
    search_fields = ("slug", "title")


@admin.register(RubricVersion)
class RubricVersionAdmin(admin.ModelAdmin):
    """Drafts can be edited; published versions are immutable (the model and a trigger agree)."""

    list_display = ("rubric", "number", "published_at", "created_by", "created_at")
    list_filter = ("rubric",)
    list_select_related = ("rubric", "created_by")
    raw_id_fields = ("created_by",)
    # Publishing goes through Rubric.publish, which validates the definition.
    readonly_fields = ("published_at",)

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_published:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_published:
            return False
        return super().has_delete_permission(request, obj)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("slug", "title", "rubric", "scoring_run", "created_at")
    list_select_related = ("rubric", "scoring_run")
    search_fields = ("slug", "title")
    raw_id_fields = ("scoring_run",)

    def get_readonly_fields(self, request, obj=None):
        # Switching rubric or scoring run by hand would break the recorded history.
        return ("rubric", "scoring_run") if obj is not None else ()


@admin.register(CampaignSettings)
class CampaignSettingsAdmin(ReadOnlyAdmin):
    list_display = ("campaign", "number", "overlap_k", "budget_total", "created_by", "created_at", "note")
    list_filter = ("campaign",)
    list_select_related = ("campaign", "created_by")


@admin.register(Annotator)
class AnnotatorAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "created_at")
    list_select_related = ("user",)
    search_fields = ("name", "user__username")
    raw_id_fields = ("user",)


@admin.register(Prompt)
class PromptAdmin(ReadOnlyAdmin, LargeTableAdmin):
    list_display = ("external_id", "campaign", "content_hash")
    list_filter = ("campaign",)
    list_select_related = ("campaign",)
    search_fields = ("=external_id",)


@admin.register(Response)
class ResponseAdmin(ReadOnlyAdmin, LargeTableAdmin):
    list_display = ("id", "prompt", "key", "model")
    list_select_related = ("prompt",)
    search_fields = ("=prompt__external_id", "=model")
    raw_id_fields = ("prompt",)


@admin.register(Item)
class ItemAdmin(ReadOnlyAdmin, LargeTableAdmin):
    list_display = (
        "external_id",
        "campaign",
        "human_judgments",
        "resolved",
        "escalated",
        "adjudicated",
        "excluded",
        "is_gold",
    )
    list_filter = ("campaign", "resolved", "escalated", "adjudicated", "excluded", "is_gold")
    list_select_related = ("campaign",)
    search_fields = ("=external_id",)
    raw_id_fields = ("prompt", "response_a", "response_b")


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin, LargeTableAdmin):
    list_display = ("uid", "item", "user", "status", "reason", "created_at", "expires_at")
    list_filter = ("status", "reason")
    list_select_related = ("item", "user")
    search_fields = ("=uid", "=user__username")
    raw_id_fields = ("item", "user", "left_response", "rubric_version", "settings_version", "scoring_run")


@admin.register(Judgment)
class JudgmentAdmin(ReadOnlyAdmin, LargeTableAdmin):
    list_display = ("id", "item", "annotator", "kind", "source", "confidence", "created_at")
    list_filter = ("kind", "source")
    list_select_related = ("item", "annotator")
    search_fields = ("=item__external_id", "=annotator__name")
    raw_id_fields = (
        "item",
        "annotator",
        "assignment",
        "left_response",
        "rubric_version",
        "settings_version",
        "scoring_run",
    )


@admin.register(Answer)
class AnswerAdmin(ReadOnlyAdmin, LargeTableAdmin):
    list_display = ("id", "judgment_id", "adjudication_id", "criterion", "response_id", "value", "confidence")
    raw_id_fields = ("judgment", "adjudication", "response")


@admin.register(Escalation)
class EscalationAdmin(ReadOnlyAdmin, LargeTableAdmin):
    list_display = ("uid", "campaign", "item", "status", "reason", "severity", "created_at")
    list_filter = ("status", "reason", "campaign")
    list_select_related = ("campaign", "item")
    search_fields = ("=uid", "=item__external_id")
    raw_id_fields = ("item", "opened_by", "claimed_by")


@admin.register(Adjudication)
class AdjudicationAdmin(ReadOnlyAdmin, LargeTableAdmin):
    list_display = ("id", "item", "lead", "source", "rubric_ambiguous", "created_at")
    list_filter = ("source", "rubric_ambiguous")
    list_select_related = ("item", "lead")
    search_fields = ("=item__external_id",)
    raw_id_fields = ("item", "lead", "escalation", "rubric_version", "settings_version")


@admin.register(FinalAnswer)
class FinalAnswerAdmin(ReadOnlyAdmin, LargeTableAdmin):
    """Derived from judgments and adjudications (reviews.leads.final_answers); edit those instead."""

    list_display = ("id", "campaign", "criterion", "item_id", "response_id", "value", "basis", "human_votes")
    list_filter = ("basis", "campaign")
    list_select_related = ("campaign",)


@admin.register(FeedbackEvent)
class FeedbackEventAdmin(ReadOnlyAdmin, LargeTableAdmin):
    """The append-only log: readable for support, never added, changed or deleted."""

    list_display = ("id", "created_at", "campaign", "action", "role", "actor", "item_id")
    list_filter = ("action", "campaign")
    list_select_related = ("campaign", "actor")
    # The primary key orders the log as it was written, without sorting the whole table.
    ordering = ("-id",)


@admin.register(ScoringRun)
class ScoringRunAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "campaign",
        "status",
        "phase",
        "trigger",
        "item_count",
        "requested_at",
        "heartbeat_at",
        "finished_at",
    )
    list_filter = ("status", "campaign")
    list_select_related = ("campaign",)
    raw_id_fields = ("settings_version",)


@admin.register(ItemScore)
class ItemScoreAdmin(ReadOnlyAdmin, LargeTableAdmin):
    """Written by scoring runs only."""

    list_display = (
        "id",
        "run_id",
        "item_id",
        "rank",
        "utility",
        "risk",
        "uncertainty",
        "diversity",
        "selected",
        "audit",
    )
    list_filter = ("selected", "audit")


@admin.register(MetricSnapshot)
class MetricSnapshotAdmin(ReadOnlyAdmin, LargeTableAdmin):
    list_display = ("name", "slice", "campaign", "value", "computed_at")
    list_filter = ("campaign", "name")
    list_select_related = ("campaign",)
    search_fields = ("=name",)


@admin.register(DatasetVersion)
class DatasetVersionAdmin(ReadOnlyAdmin):
    list_display = ("uid", "campaign", "format", "content_hash", "size_bytes", "created_by", "created_at")
    list_filter = ("campaign", "format")
    list_select_related = ("campaign", "created_by")
    search_fields = ("=uid", "=content_hash")


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    """Membership changes are recorded as events: they are made on the app's pages, not here."""

    list_display = ("campaign", "user", "active", "added_by", "updated_at")
    list_filter = ("campaign", "active")
    list_select_related = ("campaign", "user", "added_by")


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Tokens are created (secret shown once) and revoked on the app's pages; only hashes are stored."""

    list_display = ("name", "prefix", "created_by", "created_at", "last_used_at", "revoked_at")
    list_select_related = ("created_by",)
    exclude = ("key_hash",)
