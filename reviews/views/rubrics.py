"""The admins' rubric editor: drafts, preview, publish with the stale list, diffs, import and export.

Every view: access (admin role, rubric by slug) → form → reviews.rubrics.editor → redirect.
"""

from functools import wraps

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from reviews.access import role_required
from reviews.core.exceptions import DomainError, RubricError
from reviews.core.roles import Role
from reviews.labeling.forms import CONFIDENCE_KEY, ESCALATION_REASONS, PAIRWISE_KEYS, RATIONALE_KEY, JudgmentForm
from reviews.models import Adjudication, Assignment, Campaign, Item, Prompt, Response, Rubric, RubricVersion
from reviews.rubrics import editor
from reviews.rubrics.forms import CriterionFormSet, ImportRubricForm, PublishForm, RubricForm, editor_initial

EXAMPLE_RUBRIC = """{
  "slug": "my-rubric",
  "title": "My rubric",
  "guidelines": "What labelers should look for, in **Markdown**.",
  "criteria": [
    {"slug": "preference", "kind": "pairwise", "allow_tie": true, "question": "Which response is better?"}
  ]
}
"""


def _posted(request) -> tuple:
    """(data, files) for a bound form on POST (an empty POST too), (None, None) on GET."""
    return (request.POST, request.FILES) if request.method == "POST" else (None, None)


def _rubric(slug: str) -> Rubric:
    return get_object_or_404(Rubric, slug=slug)


def _version(rubric: Rubric, number: int) -> RubricVersion:
    return get_object_or_404(RubricVersion.objects.select_related("rubric", "created_by"), rubric=rubric, number=number)


def _draft_or_redirect(request, rubric: Rubric):
    draft = editor.draft_of(rubric)
    if draft is None:
        messages.info(request, f"{rubric.slug} has no open draft. Start one from the latest version.")
    return draft


def _to_rubric(rubric: Rubric):
    return redirect("reviews:rubric", rubric.slug)


def _readable(view):
    """A draft edited outside the editor (the support admin) may not parse: say so instead of failing."""

    @wraps(view)
    def wrapped(request, slug, *args, **kwargs):
        try:
            return view(request, slug, *args, **kwargs)
        except RubricError as exc:
            messages.error(request, f"A version of {slug} does not follow the rubric format: {exc}. Fix the draft.")
            return redirect("reviews:rubric", slug)

    return wrapped


@role_required(Role.ADMIN)
@require_GET
def rubric_list(request):
    """Every rubric with its latest version, open draft and campaigns."""
    rows = []
    for rubric in Rubric.objects.order_by("slug").prefetch_related("campaigns"):
        rows.append({"rubric": rubric, "latest": rubric.latest_published(), "draft": editor.draft_of(rubric)})
    return render(request, "reviews/rubrics/list.html", {"rows": rows})


@role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def rubric_new(request):
    """Create a rubric from FORMATS.md JSON (pasted or uploaded); it starts as draft v1."""
    form = ImportRubricForm(*_posted(request), initial={"text": EXAMPLE_RUBRIC})
    errors: list[str] = []
    if request.method == "POST" and form.is_valid():
        try:
            draft = editor.create_rubric(editor.load_json(form.payload()), user=request.user)
        except RubricError as exc:
            errors = exc.errors
        else:
            messages.success(request, f"Rubric {draft.rubric.slug} created as draft v1: review it, then publish.")
            return redirect("reviews:rubric_draft", draft.rubric.slug)
    status = 400 if request.method == "POST" else 200
    return render(request, "reviews/rubrics/new.html", {"form": form, "errors": errors}, status=status)


@role_required(Role.ADMIN)
@require_GET
def rubric_detail(request, slug):
    """Versions, the open draft, campaigns using the rubric, leads' ambiguity notes, and a diff picker."""
    rubric = _rubric(slug)
    versions = list(rubric.versions.select_related("created_by").order_by("-number"))
    context = {
        "rubric": rubric,
        "versions": versions,
        "published": [v for v in versions if v.is_published],
        "draft": next((v for v in versions if not v.is_published), None),
        "campaigns": rubric.campaigns.order_by("slug"),
        "notes": editor.ambiguity_notes(rubric),
    }
    return render(request, "reviews/rubrics/detail.html", context)


@role_required(Role.ADMIN)
@require_POST
def draft_create(request, slug):
    rubric = _rubric(slug)
    try:
        draft = editor.create_draft(rubric, user=request.user)
    except DomainError as exc:
        messages.error(request, str(exc))
        return _to_rubric(rubric)
    messages.success(request, f"Draft v{draft.number} opened as a copy of the latest version.")
    return redirect("reviews:rubric_draft", rubric.slug)


@role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def draft_edit(request, slug):
    """Edit the draft: title, Markdown guidelines, criteria (add, remove, reorder)."""
    rubric = _rubric(slug)
    draft = _draft_or_redirect(request, rubric)
    if draft is None:
        return _to_rubric(rubric)
    initial, criteria = editor_initial(draft.definition)
    errors: list[str] = []
    if request.method == "POST":
        form = RubricForm(request.POST, initial=initial)
        formset = CriterionFormSet(request.POST, initial=criteria, prefix="criteria")
        if form.is_valid() and formset.is_valid():
            definition = {"slug": rubric.slug, **form.cleaned_data, "criteria": formset.criteria()}
            try:
                editor.update_draft(draft, definition)
            except DomainError as exc:
                errors = getattr(exc, "errors", [str(exc)])
            else:
                messages.success(request, f"Draft v{draft.number} saved.")
                return redirect("reviews:rubric_draft", rubric.slug)
    else:
        form = RubricForm(initial=initial)
        formset = CriterionFormSet(initial=criteria, prefix="criteria")
    context = {"rubric": rubric, "draft": draft, "form": form, "formset": formset, "errors": errors}
    return render(request, "reviews/rubrics/edit.html", context, status=400 if request.method == "POST" else 200)


@role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def draft_import(request, slug):
    """Replace the draft (opening one if needed) with FORMATS.md JSON."""
    rubric = _rubric(slug)
    form = ImportRubricForm(*_posted(request))
    errors: list[str] = []
    if request.method == "POST" and form.is_valid():
        try:
            definition = editor.load_json(form.payload())
            with transaction.atomic():
                draft = editor.draft_of(rubric)
                if draft is None:
                    draft = editor.create_draft(rubric, user=request.user, definition=definition)
                else:
                    editor.update_draft(draft, definition)
        except DomainError as exc:
            errors = getattr(exc, "errors", [str(exc)])
        else:
            messages.success(request, f"Imported into draft v{draft.number}.")
            return redirect("reviews:rubric_draft", rubric.slug)
    status = 400 if request.method == "POST" else 200
    context = {"rubric": rubric, "form": form, "errors": errors}
    return render(request, "reviews/rubrics/import.html", context, status=status)


@role_required(Role.ADMIN)
@require_POST
def draft_discard(request, slug):
    rubric = _rubric(slug)
    draft = _draft_or_redirect(request, rubric)
    if draft is not None:
        try:
            editor.discard_draft(draft)
        except DomainError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Draft v{draft.number} discarded.")
    return _to_rubric(rubric)


def _sample_item(rubric: Rubric, campaign_slug: str | None, offset: int):
    """An item of a campaign using the rubric to preview with, or a placeholder pair (unsaved)."""
    campaigns = rubric.campaigns.order_by("slug")
    campaign = campaigns.filter(slug=campaign_slug).first() if campaign_slug else None
    for candidate in [campaign] if campaign else campaigns:
        items = Item.objects.filter(campaign=candidate, excluded=False).order_by("id")
        count = items.count()
        if count:
            item = items.select_related("prompt", "response_a", "response_b")[offset % count]
            return candidate, item, count
    prompt = Prompt(external_id="sample", content="A sample prompt: your campaign's items appear here once imported.")
    item = Item(
        external_id="sample",
        prompt=prompt,
        response_a=Response(prompt=prompt, key="a", model="model-a", text="The first sample response."),
        response_b=Response(prompt=prompt, key="b", model="model-b", text="The second sample response."),
    )
    return None, item, 0


@role_required(Role.ADMIN)
@require_GET
@_readable
def version_preview(request, slug, number):
    """The compare page as a labeler will see it under this version (the draft, usually), read-only."""
    rubric = _rubric(slug)
    version = _version(rubric, number)
    try:
        offset = max(0, int(request.GET.get("sample", 0)))
    except ValueError:
        offset = 0
    campaign, item, count = _sample_item(rubric, request.GET.get("campaign"), offset)
    form = JudgmentForm(Assignment(item=item, left_response=item.response_a, rubric_version=version))
    context = {
        "rubric_obj": rubric,
        "version": version,
        "campaigns": rubric.campaigns.order_by("slug"),
        "sample_campaign": campaign,
        "sample_count": count,
        "next_sample": offset + 1,
        "item": item,
        "form": form,
        "rubric": form.rubric,
        "left": form.responses["left"],
        "right": form.responses["right"],
        "keys": {"pairwise": PAIRWISE_KEYS, "confidence": CONFIDENCE_KEY, "rationale": RATIONALE_KEY},
        "escalation_reasons": ESCALATION_REASONS,
    }
    return render(request, "reviews/rubrics/preview.html", context)


@role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
@_readable
def draft_publish(request, slug):
    """Confirm with a change note (and the diff from the latest version), then publish."""
    rubric = _rubric(slug)
    draft = _draft_or_redirect(request, rubric)
    if draft is None:
        return _to_rubric(rubric)
    form = PublishForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            published = editor.publish_draft(draft, user=request.user, note=form.cleaned_data["note"])
        except DomainError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Published {rubric.slug} v{published.version.number}.")
            return redirect("reviews:rubric_version", rubric.slug, published.version.number)
    latest = rubric.latest_published()
    context = {
        "rubric": rubric,
        "draft": draft,
        "form": form,
        "diff": editor.diff_versions(latest, draft) if latest else None,
        "campaigns": rubric.campaigns.order_by("slug"),
    }
    return render(request, "reviews/rubrics/publish.html", context, status=400 if request.method == "POST" else 200)


STALE_SHOWN = 200


@role_required(Role.ADMIN)
@require_GET
@_readable
def version_detail(request, slug, number):
    """A version's definition and, per campaign, its stale list with a re-queue button."""
    rubric = _rubric(slug)
    version = _version(rubric, number)
    stale = []
    if version.is_published:
        for campaign in rubric.campaigns.order_by("slug"):
            ids = editor.stale_item_ids(campaign, version)
            stale.append({"campaign": campaign, "count": len(ids), "items": editor.stale_items_page(ids, STALE_SHOWN)})
    previous = rubric.versions.filter(published_at__isnull=False, number__lt=version.number).order_by("-number")
    context = {
        "rubric": rubric,
        "version": version,
        "definition": version.parsed,
        "stale": stale,
        "stale_shown": STALE_SHOWN,
        "previous": previous.first(),
    }
    return render(request, "reviews/rubrics/version.html", context)


@role_required(Role.ADMIN)
@require_GET
@_readable
def version_export(request, slug, number):
    """Download a version (or the draft) as FORMATS.md JSON."""
    version = _version(_rubric(slug), number)
    response = HttpResponse(editor.export_json(version), content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{slug}-v{number}.json"'
    return response


@role_required(Role.ADMIN)
@require_POST
def version_requeue(request, slug, number, campaign_slug):
    """Re-queue a campaign's stale items for this version."""
    rubric = _rubric(slug)
    version = _version(rubric, number)
    campaign = get_object_or_404(Campaign, slug=campaign_slug, rubric=rubric)
    try:
        count = editor.requeue_stale(campaign, version, user=request.user)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Re-queued {count} item(s) of {campaign.slug} for judgments under v{number}.")
    return redirect("reviews:rubric_version", rubric.slug, version.number)


@role_required(Role.ADMIN)
@require_GET
@_readable
def rubric_compare(request, slug):
    """A readable diff of two versions (?old=N&new=M; the draft counts as a version)."""
    rubric = _rubric(slug)
    versions = list(rubric.versions.order_by("number"))
    try:
        old_n, new_n = int(request.GET["old"]), int(request.GET["new"])
    except (KeyError, ValueError):
        messages.error(request, "Choose two versions to compare.")
        return _to_rubric(rubric)
    by_number = {v.number: v for v in versions}
    if old_n not in by_number or new_n not in by_number:
        messages.error(request, "There is no such version of this rubric.")
        return _to_rubric(rubric)
    diff = editor.diff_versions(by_number[old_n], by_number[new_n])
    return render(request, "reviews/rubrics/compare.html", {"rubric": rubric, "diff": diff, "versions": versions})


@role_required(Role.ADMIN)
@require_POST
def note_link(request, slug):
    """Link a lead's ambiguity note to the open draft (or unlink it)."""
    rubric = _rubric(slug)
    note = Adjudication.objects.filter(
        pk=request.POST.get("note") if str(request.POST.get("note", "")).isdigit() else None,
        rubric_ambiguous=True,
        rubric_version__rubric=rubric,
    ).first()
    if note is None:
        messages.error(request, "That note is not an ambiguity note of this rubric.")
        return _to_rubric(rubric)
    target = None
    if request.POST.get("action") != "unlink":
        target = editor.draft_of(rubric)
        if target is None:
            messages.error(request, "Open a draft first: a note is linked to the draft that answers it.")
            return _to_rubric(rubric)
    try:
        editor.link_note(note, target)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Note linked to draft v{target.number}." if target else "Note unlinked.")
    return _to_rubric(rubric)
