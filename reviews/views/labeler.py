"""The labelers' pages: the compare page with its lease actions (submit, skip, escalate, renew) and their history.

Every lease action follows one pattern: the labeler's own lease (queue.lease_for) → form →
queue function → redirect to the work page, which claims the next item. A lease that is not
theirs or no longer live gets a message and writes nothing; a lease they already finished (a
double click, a retried POST) just moves on to the next item.
"""

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from reviews.access import get_campaign_for, role_required, user_has_role, visible_campaigns
from reviews.core.roles import Role
from reviews.labeling import queue
from reviews.labeling.forms import (
    CONFIDENCE_KEY,
    ESCALATION_REASONS,
    PAIRWISE_KEYS,
    RATIONALE_KEY,
    EscalateForm,
    JudgmentForm,
    SkipForm,
)
from reviews.labeling.progress import history_rows, own_judgments, progress_for
from reviews.models import Assignment

HISTORY_PAGE_SIZE = 20
# The page renews its lease this often, and at least three times per lease (leases last a minute or more).
RENEW_EVERY_SECONDS = 300
EXPIRED = "Your lease on this item expired, so it went back to the queue. Nothing was saved."


def _open_campaigns(user):
    """Campaigns the user can work in: those they may see (labelers: their memberships) with a
    rubric (claim_next says when none is published)."""
    return visible_campaigns(user).filter(rubric__isnull=False).order_by("title", "slug")


@role_required(Role.LABELER)
@require_GET
def start(request):
    """The labeler's home: straight to the only open campaign, else a list to pick from."""
    campaigns = list(_open_campaigns(request.user))
    if len(campaigns) == 1:
        return redirect("reviews:work", campaigns[0].slug)
    # A labeler in no campaign is told so, rather than shown an empty queue.
    no_membership = not campaigns and not user_has_role(request.user, Role.LEAD)
    return render(request, "reviews/work_start.html", {"campaigns": campaigns, "no_membership": no_membership})


@role_required(Role.LABELER)
@require_GET
def work(request, slug):
    """Claim the next item (or keep the open lease) and show it; or say why there is none."""
    campaign = get_campaign_for(request.user, slug, versions=True)
    claim = queue.claim_next(campaign, request.user)
    if claim.assignment is None:
        progress = _progress(request, campaign, claim.spent)
        return render(request, "reviews/queue_empty.html", {"campaign": campaign, "claim": claim, "progress": progress})
    return _compare(request, claim.assignment, spent=claim.spent)


def _progress(request, campaign, spent=None):
    return progress_for(campaign, request.user, annotator_id=queue.annotator_id(request.user), spent=spent)


def _compare(request, assignment: Assignment, *, form=None, escalate_form=None, status=200, spent=None):
    campaign = assignment.item.campaign
    form = form or JudgmentForm(assignment)
    lease_seconds = assignment.settings_version.lease_minutes * 60
    context = {
        "campaign": campaign,
        "assignment": assignment,
        "item": assignment.item,
        "form": form,
        "escalate_form": escalate_form or EscalateForm(),
        "skip_form": SkipForm(),
        "rubric": form.rubric,
        "left": form.responses["left"],
        "right": form.responses["right"],
        "progress": _progress(request, campaign, spent),
        "lease_seconds": lease_seconds,
        "renew_seconds": min(RENEW_EVERY_SECONDS, lease_seconds // 3),
        "keys": {"pairwise": PAIRWISE_KEYS, "confidence": CONFIDENCE_KEY, "rationale": RATIONALE_KEY},
        "escalation_reasons": ESCALATION_REASONS,
    }
    return render(request, "reviews/compare.html", context, status=status)


def _work_page(assignment: Assignment | None):
    if assignment is None:
        return redirect("reviews:work_start")
    return redirect("reviews:work", assignment.item.campaign.slug)


def _refused(request, exc: queue.LeaseError, assignment: Assignment | None = None):
    messages.error(request, str(exc))
    return _work_page(assignment)


def _invalid(request, assignment: Assignment, **forms):
    """Show the item again with the form's errors, unless the lease is no longer live."""
    expired = assignment.status == Assignment.Status.EXPIRED or assignment.expires_at <= timezone.now()
    if assignment.status not in (Assignment.Status.LIVE, Assignment.Status.EXPIRED):
        return _work_page(assignment)  # already finished: a retried request moves on quietly
    if expired:
        messages.error(request, EXPIRED)
        return _work_page(assignment)
    return _compare(request, assignment, status=400, **forms)


def _lease_action(request, uid, make_form, act, done: str, *, invalid_as: str | None, level=messages.success):
    """The shape of the lease routes: the labeler's own lease → form → queue action → next item.

    `make_form(assignment)` parses the POST and `act(assignment, form)` calls the queue. An
    invalid form shows the item again under the page's name for it, `invalid_as` (None: the form
    is optional, as skip's time is); a finished lease moves on quietly (a retried POST); a
    foreign, stale or expired one gets its message and writes nothing.
    """
    assignment = form = None
    try:
        # One transaction, one read of the lease (locked), which the queue action then uses.
        with transaction.atomic():
            assignment = queue.lease_for(request.user, uid, lock=True)
            form = make_form(assignment)
            if invalid_as is None or form.is_valid():
                act(assignment, form)
                form = None
    except queue.AlreadyDone:
        return _work_page(assignment)
    except queue.LeaseError as exc:
        return _refused(request, exc, assignment)
    if form is not None:
        return _invalid(request, assignment, **{invalid_as: form})
    level(request, done)
    return _work_page(assignment)


@role_required(Role.LABELER)
@require_POST
def submit(request, uid):
    """Record the labeler's judgment of their leased item, then load the next one."""

    def act(assignment, form):
        data = form.cleaned_data
        queue.submit(
            request.user,
            assignment.uid,
            form.answers(),
            confidence=data["confidence"],
            rationale=data["rationale"],
            time_spent_ms=data["time_spent_ms"],
            lease=assignment,
        )

    return _lease_action(
        request, uid, lambda a: JudgmentForm(a, request.POST), act, "Judgment saved.", invalid_as="form"
    )


@role_required(Role.LABELER)
@require_POST
def skip(request, uid):
    """Pass on the item: it goes to someone else, never back to this labeler."""

    def act(assignment, form):
        time_spent = form.cleaned_data["time_spent_ms"] if form.is_valid() else None
        queue.skip(request.user, assignment.uid, time_spent_ms=time_spent, lease=assignment)

    done = "Skipped: the item goes to someone else."
    return _lease_action(
        request, uid, lambda a: SkipForm(request.POST), act, done, invalid_as=None, level=messages.info
    )


@role_required(Role.LABELER)
@require_POST
def escalate(request, uid):
    """Send the item to the leads with a reason and a comment."""

    def act(assignment, form):
        data = form.cleaned_data
        queue.escalate(
            request.user,
            assignment.uid,
            reason=data["reason"],
            comment=data["comment"],
            time_spent_ms=data["time_spent_ms"],
            lease=assignment,
        )

    done = "Escalated: a lead will look at this item."
    return _lease_action(request, uid, lambda a: EscalateForm(request.POST), act, done, invalid_as="escalate_form")


@role_required(Role.LABELER)
@require_POST
def renew(request, uid):
    """Keep the lease while its page is open (compare.js calls this periodically)."""
    try:
        assignment = queue.lease_for(request.user, uid)
    except queue.LeaseError as exc:
        return JsonResponse({"ok": False, "error": str(exc)}, status=404)
    if assignment.status != Assignment.Status.LIVE:
        error = f"This item was already {assignment.get_status_display().lower()}."
        return JsonResponse({"ok": False, "error": error}, status=409)
    if assignment.expires_at <= timezone.now():
        return JsonResponse({"ok": False, "error": EXPIRED}, status=409)
    assignment = queue.renew(assignment)
    return JsonResponse({"ok": True, "expires_at": assignment.expires_at.isoformat()})


@role_required(Role.LABELER)
@require_GET
def history(request):
    """The labeler's own judgments, newest first; resolved items with their final answers."""
    page = Paginator(own_judgments(request.user), HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "reviews/history.html", {"page": page, "rows": history_rows(request.user, page)})
