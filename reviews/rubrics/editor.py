"""The rubric editor's domain: drafts, publishing, diffs, the stale list and ambiguity notes.

A rubric has at most one draft (a RubricVersion without `published_at`). Publishing turns that
very row into the next immutable version, so a lead's "ambiguous rubric" note linked to the
draft stays linked to the version that answers it. Views call these functions; so do tests.
"""

import difflib
import json
from dataclasses import dataclass, field
from itertools import chain

from django.db import transaction
from django.utils import timezone

from reviews.core.exceptions import DomainError, RubricError
from reviews.data import pool_actions
from reviews.leads import adjudication
from reviews.models import (
    Adjudication,
    Campaign,
    FeedbackEvent,
    Item,
    Judgment,
    LabelKind,
    Rubric,
    RubricVersion,
)
from reviews.rubrics.definition import RubricDefinition, parse_rubric

MAX_NOTE_LENGTH = 5000


class DraftError(DomainError):
    """A draft cannot be created, changed or published as asked."""


# -- drafts ----------------------------------------------------------------------------------


def draft_of(rubric: Rubric) -> RubricVersion | None:
    """The rubric's open draft, if any."""
    return rubric.versions.filter(published_at__isnull=True).order_by("-number").first()


def _next_number(rubric: Rubric) -> int:
    last = rubric.versions.order_by("-number").first()
    return last.number + 1 if last else 1


def _checked(definition, rubric_slug: str | None) -> RubricDefinition:
    parsed = parse_rubric(definition)
    if rubric_slug is not None and parsed.slug != rubric_slug:
        raise RubricError([f"slug: this is rubric {rubric_slug!r}; a draft cannot change it to {parsed.slug!r}"])
    return parsed


def create_rubric(definition, *, user) -> RubricVersion:
    """A new rubric from a definition (FORMATS.md section 2), with that definition as its first draft."""
    parsed = _checked(definition, None)
    with transaction.atomic():
        if Rubric.objects.filter(slug=parsed.slug).exists():
            raise RubricError([f"slug: a rubric {parsed.slug!r} already exists; import into its draft instead"])
        rubric = Rubric.objects.create(slug=parsed.slug, title=parsed.title)
        return RubricVersion.objects.create(rubric=rubric, number=1, definition=parsed.to_json(), created_by=user)


def create_draft(rubric: Rubric, *, user, definition=None) -> RubricVersion:
    """Open a draft: a copy of the latest published version, or the given definition."""
    with transaction.atomic():
        Rubric.objects.select_for_update().filter(pk=rubric.pk).first()
        existing = draft_of(rubric)
        if existing is not None:
            raise DraftError(f"{rubric.slug} already has a draft (v{existing.number}); edit or discard it first.")
        if definition is None:
            latest = rubric.latest_published()
            if latest is None:
                raise DraftError(f"{rubric.slug} has no published version to start a draft from.")
            definition = latest.definition
        parsed = _checked(definition, rubric.slug)
        return RubricVersion.objects.create(
            rubric=rubric, number=_next_number(rubric), definition=parsed.to_json(), created_by=user
        )


def _locked_draft(draft: RubricVersion) -> RubricVersion:
    fresh = RubricVersion.objects.select_for_update().filter(pk=draft.pk).first()
    if fresh is None:
        raise DraftError("This draft was discarded.")
    if fresh.is_published:
        raise DraftError(f"{fresh} is published and cannot be changed; open a new draft.")
    return fresh


def update_draft(draft: RubricVersion, definition) -> RubricVersion:
    """Replace a draft's definition after validating it; a published version is refused."""
    parsed = _checked(definition, draft.rubric.slug)
    with transaction.atomic():
        fresh = _locked_draft(draft)
        fresh.definition = parsed.to_json()
        fresh.save(update_fields=["definition"])
    return fresh


def discard_draft(draft: RubricVersion) -> None:
    with transaction.atomic():
        # Notes linked to the draft are unlinked by the foreign key's SET_NULL.
        _locked_draft(draft).delete()


@dataclass
class Published:
    version: RubricVersion
    # Per campaign using the rubric: (campaign, stale item count).
    campaigns: list[tuple[Campaign, int]] = field(default_factory=list)


def publish_draft(draft: RubricVersion, *, user, note: str) -> Published:
    """Publish the draft as the rubric's next immutable version, with a change note.

    Writes one RUBRIC_PUBLISHED feedback event per campaign using the rubric.
    """
    note = (note or "").strip()
    if not note:
        raise DraftError("Write a change note: it says what changed and why.")
    if len(note) > MAX_NOTE_LENGTH:
        raise DraftError(f"The change note is longer than {MAX_NOTE_LENGTH} characters.")
    rubric = draft.rubric
    with transaction.atomic():
        Rubric.objects.select_for_update().filter(pk=rubric.pk).first()
        fresh = _locked_draft(draft)
        parsed = _checked(fresh.definition, rubric.slug)
        latest = rubric.latest_published()
        if latest is not None and latest.definition == parsed.to_json():
            raise DraftError(f"The draft is identical to v{latest.number}; there is nothing to publish.")
        if latest is not None and latest.number > fresh.number:
            # Someone published meanwhile (import_rubric): the draft becomes the newest version.
            fresh.number = latest.number + 1
        fresh.definition = parsed.to_json()
        fresh.change_note = note
        fresh.published_at = timezone.now()
        fresh.save()
        if rubric.title != parsed.title:
            rubric.title = parsed.title
            rubric.save(update_fields=["title"])
        result = Published(fresh)
        for campaign in Campaign.objects.filter(rubric=rubric).order_by("slug"):
            stale = len(stale_item_ids(campaign, fresh))
            result.campaigns.append((campaign, stale))
            FeedbackEvent.record(
                campaign,
                FeedbackEvent.Action.RUBRIC_PUBLISHED,
                {
                    "rubric": rubric.slug,
                    "version": fresh.number,
                    "previous": latest.number if latest else None,
                    "note": note,
                    "stale_items": stale,
                },
                actor=user,
                rubric_version=fresh,
            )
    return result


def export_json(version: RubricVersion) -> str:
    """A version's definition as FORMATS.md JSON (what import takes back)."""
    return json.dumps(version.parsed.to_json(), indent=2, ensure_ascii=False) + "\n"


def load_json(text: str | bytes):
    """Decode pasted or uploaded rubric JSON; raise RubricError with a readable message."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RubricError(["the file is not valid UTF-8"]) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RubricError([f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"]) from exc


# -- the stale list --------------------------------------------------------------------------


def stale_item_ids(campaign: Campaign, version: RubricVersion) -> list[int]:
    """Resolved items of the campaign judged only under versions older than `version`, by id.

    An item counts when some human judgment or adjudication of it was made under an older
    version of this rubric and none under `version` or a newer one; excluded items are left out.
    Re-queued items stay on the list until a judgment under the new version arrives.
    """
    versions = RubricVersion.objects.filter(rubric_id=version.rubric_id)
    older = set(versions.filter(number__lt=version.number).values_list("id", flat=True))
    if not older:
        return []
    # One pass over the campaign's answers in Python: as correlated subqueries, SQLite chose the
    # rubric-version index and scanned every old judgment per item (quadratic).
    seen_old, seen_new = set(), set()
    rows = chain(
        Judgment.objects.filter(item__campaign=campaign, kind=LabelKind.HUMAN)
        .values_list("item_id", "rubric_version_id")
        .iterator(chunk_size=20_000),
        Adjudication.objects.filter(item__campaign=campaign)
        .values_list("item_id", "rubric_version_id")
        .iterator(chunk_size=20_000),
    )
    for item_id, version_id in rows:
        (seen_old if version_id in older else seen_new).add(item_id)
    candidates = seen_old - seen_new
    if not candidates:
        return []
    resolved = Item.objects.filter(campaign=campaign, resolved=True, excluded=False).values_list("id", flat=True)
    return sorted(candidates.intersection(resolved.iterator(chunk_size=20_000)))


def stale_items_page(ids: list[int], limit: int = 200) -> list[Item]:
    """The first `limit` stale items, for display."""
    return list(Item.objects.filter(id__in=ids[:limit]).select_related("prompt").order_by("id"))


def requeue_stale(campaign: Campaign, version: RubricVersion, *, user) -> int:
    """Ask for fresh judgments of every stale item (reviews.data.pool_actions.requeue); returns the count."""
    if campaign.rubric_id != version.rubric_id:
        raise DraftError(f"Campaign {campaign.slug} does not use rubric {version.rubric.slug}.")
    if not version.is_published:
        raise DraftError("Only a published version has a stale list.")
    ids = stale_item_ids(campaign, version)
    return pool_actions.requeue(
        campaign, ids, user=user, reason=f"rubric {version.rubric.slug} v{version.number} published"
    )


# -- ambiguity notes -------------------------------------------------------------------------


def ambiguity_notes(rubric: Rubric):
    """Leads' "the rubric is ambiguous here" notes made under any version of this rubric, newest first."""
    return adjudication.ambiguity_notes(rubric)


def link_note(note: Adjudication, version: RubricVersion | None) -> Adjudication:
    """Record which draft (or version) answers an ambiguity note; None unlinks it."""
    if not note.rubric_ambiguous:
        raise DraftError("This adjudication carries no ambiguity note.")
    if version is not None and version.rubric_id != note.rubric_version.rubric_id:
        raise DraftError("The note and the draft belong to different rubrics.")
    Adjudication.objects.filter(pk=note.pk).update(ambiguity_addressed_by=version)
    note.ambiguity_addressed_by = version
    return note


# -- diffs -----------------------------------------------------------------------------------


@dataclass
class DiffLine:
    kind: str  # "same", "added", "removed", "hunk"
    text: str


@dataclass
class CriterionDiff:
    slug: str
    status: str  # "added", "removed", "changed", "unchanged"
    changes: list[str] = field(default_factory=list)


@dataclass
class RubricDiff:
    old: RubricVersion
    new: RubricVersion
    title: tuple[str, str] | None
    guidelines: list[DiffLine]
    criteria: list[CriterionDiff]

    @property
    def unchanged(self) -> bool:
        return self.title is None and not self.guidelines and all(c.status == "unchanged" for c in self.criteria)


def _text_diff(old: str, new: str) -> list[DiffLine]:
    if old == new:
        return []
    out = []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=2):
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            out.append(DiffLine("hunk", line))
        elif line.startswith("+"):
            out.append(DiffLine("added", line[1:]))
        elif line.startswith("-"):
            out.append(DiffLine("removed", line[1:]))
        else:
            out.append(DiffLine("same", line[1:]))
    return out


def _show(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def _criterion_changes(old: dict, new: dict) -> list[str]:
    changes = []
    for key in ("kind", "question", "per_response", "allow_tie", "min", "max"):
        if old.get(key) != new.get(key) and (key in old or key in new):
            changes.append(f"{key}: {_show(old.get(key))} → {_show(new.get(key))}")
    old_opts = {o["value"]: o for o in old.get("options", [])}
    new_opts = {o["value"]: o for o in new.get("options", [])}
    for value, opt in new_opts.items():
        if value not in old_opts:
            changes.append(f"option added: {value} ({opt['label']}){' [risk]' if opt.get('risk') else ''}")
    for value in old_opts:
        if value not in new_opts:
            changes.append(f"option removed: {value}")
    for value, opt in new_opts.items():
        before = old_opts.get(value)
        if before is None:
            continue
        if before["label"] != opt["label"]:
            changes.append(f"option {value}: label {_show(before['label'])} → {_show(opt['label'])}")
        if bool(before.get("risk")) != bool(opt.get("risk")):
            changes.append(f"option {value}: risk {'on' if opt.get('risk') else 'off'}")
    if [v for v in old_opts if v in new_opts] != [v for v in new_opts if v in old_opts]:
        changes.append("options reordered")
    return changes


def diff_versions(old: RubricVersion, new: RubricVersion) -> RubricDiff:
    """A readable diff of two versions: title, guidelines line by line, criteria field by field."""
    a, b = old.parsed.to_json(), new.parsed.to_json()
    old_crit = {c["slug"]: c for c in a["criteria"]}
    new_crit = {c["slug"]: c for c in b["criteria"]}
    criteria = []
    for slug, crit in new_crit.items():
        if slug not in old_crit:
            criteria.append(CriterionDiff(slug, "added", [f"{crit['kind']}: {crit['question']}"]))
            continue
        changes = _criterion_changes(old_crit[slug], crit)
        criteria.append(CriterionDiff(slug, "changed" if changes else "unchanged", changes))
    criteria.extend(CriterionDiff(slug, "removed") for slug in old_crit if slug not in new_crit)
    if [s for s in old_crit if s in new_crit] != [s for s in new_crit if s in old_crit]:
        criteria.append(CriterionDiff("(order)", "changed", ["criteria reordered"]))
    return RubricDiff(
        old,
        new,
        title=(a["title"], b["title"]) if a["title"] != b["title"] else None,
        guidelines=_text_diff(a["guidelines"], b["guidelines"]),
        criteria=criteria,
    )
