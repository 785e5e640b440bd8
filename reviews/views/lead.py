"""The leads' pages: the escalation queue, the adjudication page and its actions, and the adjudication history.

Every action is: the escalation (access helper) → form → a reviews.leads.escalation or
reviews.leads.adjudication function → redirect. A refused move (someone else's claim, an illegal
transition) comes back as a message on the page; nothing is written.
"""

import uuid

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from reviews.access import get_campaign_for, role_required
from reviews.core.exceptions import DomainError
from reviews.core.roles import Role
from reviews.labeling.progress import gold_alerts
from reviews.leads import adjudication, escalation
from reviews.leads.forms import AdjudicationForm, DismissForm, NoteForm, ReviseForm
from reviews.models import Campaign, Escalation, Item

Status = Escalation.Status
STATUS_FILTERS = {
    "active": ("Open and in review", escalation.ACTIVE),
    "open": ("Open", (Status.OPEN,)),
    "in_review": ("In review", (Status.IN_REVIEW,)),
    "closed": ("Resolved and dismissed", escalation.CLOSED),
}
PAGE_SIZE = 50


def _escalation_for(user, uid) -> Escalation:
    """An escalation by its public id, in a campaign the user may open; 404 otherwise."""
    try:
        key = uuid.UUID(str(uid))
    except (ValueError, ValidationError):
        raise Http404("No such escalation.") from None
    e = get_object_or_404(
        Escalation.objects.select_related("campaign", "item__prompt", "item__response_a", "item__response_b"),
        uid=key,
    )
    get_campaign_for(user, e.campaign.slug)
    return e


def _queue_page(request, campaign: Campaign | None):
    status = request.GET.get("status", "active")
    if status not in STATUS_FILTERS:
        status = "active"
    if campaign is None and request.GET.get("campaign"):
        campaign = get_campaign_for(request.user, request.GET["campaign"])
        filtered_by_param = True
    else:
        filtered_by_param = False
    rows_qs = escalation.lead_queue(campaign, STATUS_FILTERS[status][1])
    page = Paginator(rows_qs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = escalation.queue_rows(page.object_list)
    overdue = escalation.oldest_overdue(campaign)
    context = {
        "campaign": campaign,
        "filtered_by_param": filtered_by_param,
        "rows": rows,
        "page": page,
        "status": status,
        "status_filters": [(key, label) for key, (label, _) in STATUS_FILTERS.items()],
        "campaigns": Campaign.objects.order_by("title", "slug").only("slug", "title"),
        "oldest_overdue": overdue,
        "gold_alerts": gold_alerts(campaign),
        "gold_threshold": settings.GOLD_ALERT_ACCURACY,
    }
    return render(request, "reviews/lead/queue.html", context)


@role_required(Role.LEAD)
@require_GET
def escalations(request):
    """Open escalations over every campaign (filterable), by severity then age, with their SLA."""
    return _queue_page(request, None)


@role_required(Role.LEAD)
@require_GET
def campaign_escalations(request, slug):
    """The same queue for one campaign."""
    return _queue_page(request, get_campaign_for(request.user, slug))


def _page(request, e: Escalation, *, form=None, dismiss_form=None, note_form=None, status=200):
    item = e.item
    rubric = e.campaign.rubric_version()
    if rubric is None:
        messages.error(request, "This campaign has no published rubric: nothing to adjudicate against.")
        return redirect("reviews:escalations")
    sheet = adjudication.review_sheet(item)
    mine = e.status == Status.IN_REVIEW and e.claimed_by_id == request.user.id
    context = {
        "escalation": e,
        "campaign": e.campaign,
        "item": item,
        "row": escalation.queue_rows([e])[0],
        "sheet": sheet,
        "mine": mine,
        "form": form or AdjudicationForm(item, rubric.parsed, initial_answers=sheet.initial),
        "dismiss_form": dismiss_form or DismissForm(),
        "note_form": note_form or NoteForm(),
        "rubric": rubric.parsed,
        "other_escalations": item.escalations.exclude(pk=e.pk).order_by("-created_at")[:10],
    }
    return render(request, "reviews/lead/adjudicate.html", context, status=status)


@role_required(Role.LEAD)
@require_GET
def adjudicate_page(request, uid):
    """The item as labelers saw it, every judgment side by side, scores, and the lead's forms."""
    return _page(request, _escalation_for(request.user, uid))


def _back(e: Escalation):
    return redirect("reviews:adjudicate", e.uid)


@role_required(Role.LEAD)
@require_POST
def claim(request, uid):
    """Take the escalation for review (only one lead at a time)."""
    e = _escalation_for(request.user, uid)
    try:
        escalation.claim(e, request.user)
    except DomainError as exc:
        messages.error(request, str(exc))
        if request.POST.get("from") == "queue":
            return redirect("reviews:escalations")
        return _back(e)
    messages.success(request, "Claimed: the escalation is yours to review.")
    return _back(e)


@role_required(Role.LEAD)
@require_POST
def release(request, uid):
    """Give the escalation back to the queue."""
    e = _escalation_for(request.user, uid)
    try:
        escalation.release(e, request.user)
    except DomainError as exc:
        messages.error(request, str(exc))
        return _back(e)
    messages.info(request, "Released: the escalation is back in the queue.")
    return redirect("reviews:escalations")


@role_required(Role.LEAD)
@require_POST
def resolve(request, uid):
    """Record the final answers and resolve the escalation."""
    e = _escalation_for(request.user, uid)
    rubric = e.campaign.rubric_version()
    if rubric is None:
        messages.error(request, "This campaign has no published rubric: nothing to adjudicate against.")
        return redirect("reviews:escalations")
    form = AdjudicationForm(e.item, rubric.parsed, request.POST)
    if not form.is_valid():
        return _page(request, e, form=form, status=400)
    try:
        adjudication.adjudicate(
            e.item,
            request.user,
            form.answers(),
            rationale=form.cleaned_data["rationale"],
            rubric_ambiguous=form.cleaned_data["rubric_ambiguous"],
            ambiguity_note=form.cleaned_data["ambiguity_note"],
            escalation=e,
        )
    except DomainError as exc:
        messages.error(request, str(exc))
        return _page(request, e, form=form, status=409)
    messages.success(request, "Adjudicated: the final answers are recorded and labelers see the outcome.")
    following = escalation.lead_queue(e.campaign, (Status.OPEN,)).first()
    return redirect("reviews:adjudicate", following.uid) if following else redirect("reviews:escalations")


@role_required(Role.LEAD)
@require_POST
def dismiss(request, uid):
    """Close the escalation without an adjudication; the item goes back to the labelers' queue."""
    e = _escalation_for(request.user, uid)
    form = DismissForm(request.POST)
    if not form.is_valid():
        return _page(request, e, dismiss_form=form, status=400)
    try:
        escalation.dismiss(e, request.user, form.cleaned_data["reason"])
    except DomainError as exc:
        messages.error(request, str(exc))
        return _back(e)
    messages.success(request, "Dismissed: the item is back in the labelers' queue.")
    return redirect("reviews:escalations")


@role_required(Role.LEAD)
@require_POST
def reopen(request, uid):
    """Put a resolved or dismissed escalation back in the leads' queue."""
    e = _escalation_for(request.user, uid)
    form = NoteForm(request.POST)
    if not form.is_valid():
        return _page(request, e, note_form=form, status=400)
    try:
        escalation.reopen(e, request.user, form.cleaned_data["note"])
    except DomainError as exc:
        messages.error(request, str(exc))
        return _back(e)
    messages.success(request, "Reopened: the escalation is back in the queue.")
    return _back(e)


@role_required(Role.LEAD)
@require_GET
def adjudications(request, slug):
    """Every adjudication of a campaign, made here or imported, newest first; each can be revised."""
    campaign = get_campaign_for(request.user, slug)
    page = Paginator(adjudication.campaign_adjudications(campaign), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"campaign": campaign, "page": page}
    return render(request, "reviews/lead/adjudications.html", context)


@role_required(Role.LEAD)
@require_POST
def revise(request, slug):
    """Open a revision of an item's adjudication (a new escalation, claimed by this lead)."""
    campaign = get_campaign_for(request.user, slug)
    form = ReviseForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why the adjudication needs revising.")
        return redirect("reviews:adjudications", campaign.slug)
    item = get_object_or_404(Item, campaign=campaign, external_id=form.cleaned_data["item"])
    try:
        e = adjudication.revise(item, request.user, form.cleaned_data["note"])
    except DomainError as exc:
        messages.error(request, str(exc))
        return redirect("reviews:adjudications", campaign.slug)
    messages.info(request, "Revision opened: give the new final answers. The earlier adjudication stays in history.")
    return _back(e)
