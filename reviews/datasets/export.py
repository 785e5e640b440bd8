"""Dataset versions (FORMATS.md section 3): preference and full JSONL, hashed, stored, immutable.

The exported bytes are written once to `REVIEWS_DATASET_DIR/<sha256>.jsonl` (content
addressed), and the DatasetVersion row records that hash. A download verifies the file
against the hash before serving it; a missing or damaged file is rebuilt from the stored
filters and served only when the rebuilt bytes hash the same (otherwise the download
refuses: the campaign has changed since and the exact bytes are gone).
"""

import hashlib
import os
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import django_rq
import orjson
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from redis.exceptions import RedisError

from reviews.core.exceptions import DomainError
from reviews.labeling.progress import gold_answer_map
from reviews.models import (
    Adjudication,
    Annotator,
    Answer,
    Campaign,
    DatasetVersion,
    FeedbackEvent,
    FinalAnswer,
    Item,
    Judgment,
    LabelKind,
    Prompt,
    Response,
)
from reviews.rubrics.definition import TIE

CHUNK = 500
FORMATS = tuple(DatasetVersion.Format.values)


class DatasetUnavailable(DomainError):
    """A dataset version's exact bytes can no longer be produced."""


@dataclass(frozen=True)
class Filters:
    """Which items a dataset version takes; every filter narrows the selection."""

    rubric_version: int | None = None
    adjudicated_only: bool = False
    min_agreement: float | None = None
    # Items carrying every one of these tags.
    tags: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {
            "rubric_version": self.rubric_version,
            "adjudicated_only": self.adjudicated_only,
            "min_agreement": self.min_agreement,
            "tags": list(self.tags),
        }

    @classmethod
    def from_json(cls, data: dict) -> "Filters":
        return cls(
            rubric_version=data.get("rubric_version"),
            adjudicated_only=bool(data.get("adjudicated_only")),
            min_agreement=data.get("min_agreement"),
            tags=tuple(data.get("tags") or ()),
        )


def check_filters(campaign: Campaign, fmt: str, filters: Filters) -> None:
    """Raise DomainError with a message for the person who asked, when a filter cannot apply."""
    if fmt not in FORMATS:
        raise DomainError(f"Unknown format {fmt!r}: expected one of {', '.join(FORMATS)}.")
    version = campaign.rubric_version()
    if version is None:
        raise DomainError(f"Campaign {campaign.slug!r} has no published rubric yet: there is nothing to export.")
    if filters.rubric_version is not None:
        numbers = set(campaign.rubric.versions.filter(published_at__isnull=False).values_list("number", flat=True))
        if filters.rubric_version not in numbers:
            known = ", ".join(str(n) for n in sorted(numbers))
            raise DomainError(
                f"Rubric version {filters.rubric_version} is not a published version (published: {known})."
            )
    if filters.min_agreement is not None and not 0 <= filters.min_agreement <= 1:
        raise DomainError(f"Minimum agreement must be between 0 and 1, got {filters.min_agreement}.")
    if any(not isinstance(t, str) or not t.strip() for t in filters.tags):
        raise DomainError("Tags must be non-empty strings.")
    if fmt == DatasetVersion.Format.PREFERENCE and pairwise_criterion(campaign) is None:
        raise DomainError("The rubric has no pairwise criterion, so there are no chosen/rejected pairs: export full.")


def pairwise_criterion(campaign: Campaign):
    version = campaign.rubric_version()
    if version is None:
        return None
    return next((c for c in version.parsed.criteria if c.kind == "pairwise"), None)


def agreement(questions: list[Counter], n_judgments: int) -> float | None:
    """Mean over an item's questions of the share of human votes matching the most common answer.

    Null with fewer than two human judgments: one vote agrees with itself and says nothing.
    """
    shares = [max(votes.values()) / sum(votes.values()) for votes in questions if votes]
    if n_judgments < 2 or not shares:
        return None
    return round(sum(shares) / len(shares), 4)


@dataclass
class Build:
    """What building a dataset produced: its hash, size and counts."""

    content_hash: str = ""
    size_bytes: int = 0
    counts: Counter = field(default_factory=Counter)
    rubric_versions: set = field(default_factory=set)


def _items(campaign: Campaign, filters: Filters):
    queryset = Item.objects.filter(campaign=campaign, excluded=False)
    if filters.adjudicated_only:
        queryset = queryset.filter(adjudicated=True)
    return list(queryset.order_by("id").values_list("id", flat=True))


def _in_force_adjudication_answers(campaign: Campaign) -> set[int]:
    """Ids of adjudication answers in force: per question, the latest adjudication's answer.

    Superseded answers are history, not labels: exporting them would let an older answer win
    again on import.
    """
    latest: dict = {}
    rows = Answer.objects.filter(adjudication__item__campaign=campaign).values_list(
        "id", "criterion", "response_id", "adjudication__item_id", "adjudication__created_at", "adjudication_id"
    )
    for answer_id, criterion, response_id, item_id, created_at, adj_id in rows:
        key = (criterion, response_id) if response_id is not None else (criterion, "item", item_id)
        if key not in latest or (created_at, adj_id) > latest[key][0]:
            latest[key] = ((created_at, adj_id), answer_id)
    return {answer_id for _, answer_id in latest.values()}


@dataclass
class _Label:
    """A judgment or adjudication of an item, as the exporter needs it."""

    kind: str
    annotator: str
    confidence: float | None
    rationale: str
    created_at: object
    version: int
    answers: list = field(default_factory=list)


@dataclass
class _Answer:
    id: int
    criterion: str
    response_id: int | None
    value: str
    confidence: float | None


@dataclass
class _Item:
    id: int
    external_id: str
    prompt: SimpleNamespace
    response_a: SimpleNamespace
    response_b: SimpleNamespace
    risk_prior: float | None
    tags: list
    metadata: dict
    is_gold: bool
    gold_answers: object
    judgments: list = field(default_factory=list)
    adjudications: list = field(default_factory=list)


class _Loader:
    """Loads chunks of items with their labels as plain rows (model instances cost 5x more)."""

    def __init__(self):
        self.names: dict[int, str] = {}

    def _annotators(self, ids) -> None:
        missing = set(ids) - set(self.names)
        rows = Annotator.objects.filter(id__in=missing).values_list("id", "name", "user__username")
        # App users are exported by username (FORMATS.md: annotators are kept by name).
        self.names.update({pk: username or name for pk, name, username in rows})

    def load(self, ids: list[int]) -> list[_Item]:
        rows = list(
            Item.objects.filter(id__in=ids)
            .order_by("id")
            .values_list(
                "id",
                "external_id",
                "prompt_id",
                "response_a_id",
                "response_b_id",
                "risk_prior",
                "tags",
                "metadata",
                "is_gold",
                "gold_answers",
            )
        )
        prompts = {
            pk: SimpleNamespace(external_id=ext, content=content)
            for pk, ext, content in Prompt.objects.filter(id__in={r[2] for r in rows}).values_list(
                "id", "external_id", "content"
            )
        }
        responses = {
            pk: SimpleNamespace(id=pk, key=key, model=model, text=text)
            for pk, key, model, text in Response.objects.filter(
                id__in={r[3] for r in rows} | {r[4] for r in rows}
            ).values_list("id", "key", "model", "text")
        }
        items = {r[0]: _Item(r[0], r[1], prompts[r[2]], responses[r[3]], responses[r[4]], *r[5:]) for r in rows}
        judgments = {}
        for pk, item_id, annotator_id, kind, confidence, rationale, created_at, version in (
            Judgment.objects.filter(item_id__in=ids)
            .order_by("created_at", "id")
            .values_list(
                "id",
                "item_id",
                "annotator_id",
                "kind",
                "confidence",
                "rationale",
                "created_at",
                "rubric_version__number",
            )
        ):
            judgments[pk] = _Label(kind, annotator_id, confidence, rationale, created_at, version)
            items[item_id].judgments.append(judgments[pk])
        adjudications = {}
        for pk, item_id, lead_id, rationale, created_at, version in (
            Adjudication.objects.filter(item_id__in=ids)
            .order_by("created_at", "id")
            .values_list("id", "item_id", "lead_id", "rationale", "created_at", "rubric_version__number")
        ):
            adjudications[pk] = _Label("lead", lead_id, None, rationale, created_at, version)
            items[item_id].adjudications.append(adjudications[pk])
        self._annotators(label.annotator for label in (*judgments.values(), *adjudications.values()))
        for label in (*judgments.values(), *adjudications.values()):
            label.annotator = self.names[label.annotator]
        answer_columns = ("id", "criterion", "response_id", "value", "confidence")
        for judgment_id, *values in (
            Answer.objects.filter(judgment__item_id__in=ids).order_by("id").values_list("judgment_id", *answer_columns)
        ):
            judgments[judgment_id].answers.append(_Answer(*values))
        for adjudication_id, *values in (
            Answer.objects.filter(adjudication__item_id__in=ids)
            .order_by("id")
            .values_list("adjudication_id", *answer_columns)
        ):
            adjudications[adjudication_id].answers.append(_Answer(*values))
        return [items[pk] for pk in ids if pk in items]


def _human_questions(item) -> tuple[list[Counter], int]:
    votes: dict = {}
    n = 0
    for judgment in item.judgments:
        if judgment.kind != LabelKind.HUMAN:
            continue
        n += 1
        for answer in judgment.answers:
            votes.setdefault((answer.criterion, answer.response_id), Counter())[answer.value] += 1
    return list(votes.values()), n


def _label_versions(item) -> set[int]:
    """Rubric version numbers of the item's human judgments and adjudications."""
    versions = {j.version for j in item.judgments if j.kind == LabelKind.HUMAN}
    versions.update(a.version for a in item.adjudications)
    return versions


class Exporter:
    def __init__(self, campaign: Campaign, fmt: str, filters: Filters):
        check_filters(campaign, fmt, filters)
        self.campaign = campaign
        self.fmt = fmt
        self.filters = filters
        self.rubric = campaign.rubric_version().parsed
        self.criteria = self.rubric.by_slug
        self.pairwise = pairwise_criterion(campaign)
        self.build = Build()

    def lines(self) -> Iterator[bytes]:
        """The dataset's lines, each ending in a newline, in item order."""
        counts = self.build.counts
        counts["excluded_items_left_out"] = Item.objects.filter(campaign=self.campaign, excluded=True).count()
        counts["items"] = counts["lines"] = 0
        ids = _items(self.campaign, self.filters)
        in_force = _in_force_adjudication_answers(self.campaign) if self.fmt == "full" else set()
        wanted_tags = set(self.filters.tags)
        loader = _Loader()
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            finals = {}
            if self.fmt == "preference":
                rows = FinalAnswer.objects.filter(item_id__in=chunk, criterion=self.pairwise.slug)
                finals = {
                    item_id: (value, basis) for item_id, value, basis in rows.values_list("item_id", "value", "basis")
                }
            for item in loader.load(chunk):
                if wanted_tags and not wanted_tags <= set(item.tags):
                    counts["left_out_by_tags"] += 1
                    continue
                versions = _label_versions(item)
                if self.filters.rubric_version is not None and versions != {self.filters.rubric_version}:
                    counts["left_out_by_rubric_version"] += 1
                    continue
                questions, n_human = _human_questions(item)
                share = agreement(questions, n_human)
                if self.filters.min_agreement is not None and (share is None or share < self.filters.min_agreement):
                    counts["left_out_by_agreement"] += 1
                    continue
                counts["items"] += 1
                if self.fmt == "preference":
                    line = self._preference(item, *finals.get(item.id, (None, None)), versions, n_human, share)
                else:
                    line = self._full(item, in_force)
                if line is None:
                    continue
                counts["lines"] += 1
                self.build.rubric_versions.update(versions)
                # Sorted keys: PostgreSQL's jsonb reorders stored objects (metadata, chat turns), and
                # the same data must give the same bytes, and hash, on every database.
                yield orjson.dumps(line, option=orjson.OPT_SORT_KEYS) + b"\n"

    def _preference(self, item, value, basis, versions, n_human, share) -> dict | None:
        counts = self.build.counts
        if value is None:
            counts["unresolved_left_out"] += 1
            return None
        if value == TIE:
            counts["ties_left_out"] += 1
            return None
        a, b = item.response_a, item.response_b
        chosen, rejected = (a, b) if value == a.key else (b, a)
        return {
            "prompt": item.prompt.content,
            "chosen": chosen.text,
            "rejected": rejected.text,
            "id": item.external_id,
            "rubric_version": max(versions) if versions else None,
            "n_judgments": n_human,
            "agreement": share,
            "adjudicated": basis == FinalAnswer.Basis.ADJUDICATION,
            "chosen_model": chosen.model,
            "rejected_model": rejected.model,
        }

    def _label(self, annotator, kind, answer, keys, confidence, rationale, created_at) -> dict | None:
        criterion = self.criteria.get(answer.criterion)
        if criterion is None:
            # The criterion left the rubric: the import would refuse the label.
            self.build.counts["labels_left_out_unknown_criterion"] += 1
            return None
        label = {"annotator": annotator, "kind": kind, "criterion": answer.criterion}
        if answer.response_id is not None:
            label["response"] = keys[answer.response_id]
        label["value"] = criterion.parse_stored(answer.value)
        if confidence is not None:
            label["confidence"] = confidence
        if rationale:
            label["rationale"] = rationale
        label["created_at"] = created_at.isoformat()
        self.build.counts[f"{kind}_labels"] += 1
        return label

    def _full(self, item, in_force: set[int]) -> dict:
        a, b = item.response_a, item.response_b
        keys = {a.id: a.key, b.id: b.key}
        line = {
            "external_id": item.external_id,
            "prompt_id": item.prompt.external_id,
            "prompt": item.prompt.content,
            "responses": [{"key": r.key, "model": r.model, "text": r.text} for r in (a, b)],
        }
        if item.risk_prior is not None:
            line["risk_prior"] = item.risk_prior
        if item.tags:
            line["tags"] = item.tags
        if item.metadata:
            line["metadata"] = item.metadata
        labels = []
        for judgment in item.judgments:
            for answer in judgment.answers:
                confidence = answer.confidence if answer.confidence is not None else judgment.confidence
                label = self._label(
                    judgment.annotator, judgment.kind, answer, keys, confidence, judgment.rationale, judgment.created_at
                )
                if label is not None:
                    labels.append(label)
        for adjudication in item.adjudications:
            for answer in adjudication.answers:
                if answer.id not in in_force:
                    self.build.counts["superseded_adjudications_left_out"] += 1
                    continue
                label = self._label(
                    adjudication.annotator, "lead", answer, keys, None, adjudication.rationale, adjudication.created_at
                )
                if label is not None:
                    labels.append(label)
        if labels:
            line["labels"] = labels
        if item.is_gold and item.gold_answers:
            gold = []
            order = {slug: n for n, slug in enumerate(self.criteria)}
            answers = sorted(
                gold_answer_map(item).items(),
                key=lambda kv: (order.get(kv[0][0], len(order)), kv[0][0], kv[0][1] or ""),
            )
            for (criterion, response), value in answers:
                entry = {"criterion": criterion}
                if response is not None:
                    entry["response"] = response
                known = self.criteria.get(criterion)
                entry["value"] = known.parse_stored(value) if known else value
                gold.append(entry)
            line["gold"] = gold
            self.build.counts["gold_items"] += 1
        return line


def storage_dir() -> Path:
    path = Path(settings.REVIEWS_DATASET_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def stored_path(content_hash: str) -> Path:
    return storage_dir() / f"{content_hash}.jsonl"


@contextmanager
def _snapshot():
    """One consistent view of the campaign for the whole export, where that costs no one anything.

    PostgreSQL: a REPEATABLE READ transaction (readers never block writers), so judgments
    committed mid-export cannot leave one item half new. SQLite takes the write lock at BEGIN
    (IMMEDIATE mode) and would stall labelers for the export's duration, so it reads as it goes.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def write_dataset(exporter: Exporter) -> Build:
    """Stream the lines to a file named by their SHA-256 (written beside it, then renamed)."""
    digest = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(dir=storage_dir(), suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, _snapshot():
            for line in exporter.lines():
                digest.update(line)
                size += len(line)
                out.write(line)
        exporter.build.content_hash = digest.hexdigest()
        exporter.build.size_bytes = size
        os.replace(tmp, stored_path(exporter.build.content_hash))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return exporter.build


def create_dataset(campaign: Campaign, fmt: str, filters: Filters, *, user=None) -> DatasetVersion:
    """Build, store and record a new immutable dataset version; writes a DATASET_CREATED event."""
    build = write_dataset(Exporter(campaign, fmt, filters))
    counts = dict(sorted(build.counts.items()))
    with transaction.atomic():
        version = DatasetVersion.objects.create(
            uid=uuid.uuid4(),
            campaign=campaign,
            format=fmt,
            filters=filters.to_json(),
            counts=counts,
            rubric_versions=sorted(build.rubric_versions),
            content_hash=build.content_hash,
            size_bytes=build.size_bytes,
            created_by=user,
        )
        FeedbackEvent.record(
            campaign,
            FeedbackEvent.Action.DATASET_CREATED,
            {
                "dataset": str(version.uid),
                "format": fmt,
                "filters": version.filters,
                "counts": counts,
                "content_hash": build.content_hash,
            },
            actor=user,
            scoring_run=None,
        )
    return version


def build_dataset(campaign_id: int, fmt: str, filters: dict, user_id: int | None) -> str:
    """The RQ job behind request_dataset: create the version; return its uid."""
    campaign = Campaign.objects.select_related("rubric").get(pk=campaign_id)
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    return str(create_dataset(campaign, fmt, Filters.from_json(filters), user=user).uid)


def request_dataset(campaign: Campaign, fmt: str, filters: Filters, *, user=None) -> DatasetVersion | None:
    """Create a version now when the campaign is small, else queue it for the worker (returns None).

    A web request must not spend minutes exporting: above REVIEWS_DATASET_INLINE_ITEMS items the
    RQ worker builds it, and it is listed once done. Bad filters are refused at once either way.
    """
    check_filters(campaign, fmt, filters)
    if Item.objects.filter(campaign=campaign, excluded=False).count() <= settings.REVIEWS_DATASET_INLINE_ITEMS:
        return create_dataset(campaign, fmt, filters, user=user)
    try:
        # Enqueued at once (nothing to commit first), so an unreachable queue is reported here.
        django_rq.get_queue("default", commit_mode="auto").enqueue(
            build_dataset,
            campaign.id,
            fmt,
            filters.to_json(),
            getattr(user, "id", None),
            job_timeout=settings.SCORING_JOB_TIMEOUT,
        )
    except RedisError as exc:
        raise DomainError(
            f"The background queue is unreachable ({exc}); try again, or run manage.py export_dataset."
        ) from exc
    return None


def _file_hash(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except FileNotFoundError:
        return None


def dataset_file(version: DatasetVersion) -> Path:
    """The path of the version's exact bytes, verified against its hash (rebuilt when missing)."""
    path = stored_path(version.content_hash)
    if _file_hash(path) == version.content_hash:
        return path
    try:
        exporter = Exporter(version.campaign, version.format, Filters.from_json(version.filters))
    except DomainError as exc:
        raise DatasetUnavailable(
            f"The stored file of dataset {version.uid} is gone and cannot be rebuilt: {exc}"
        ) from exc
    rebuilt = write_dataset(exporter)
    if rebuilt.content_hash != version.content_hash:
        stored_path(rebuilt.content_hash).unlink(missing_ok=True)
        raise DatasetUnavailable(
            f"The stored file of dataset {version.uid} is gone and the campaign has changed since: rebuilding it "
            "gives other bytes. Create a new dataset version."
        )
    return path


def download_name(version: DatasetVersion) -> str:
    return f"{version.campaign.slug}-{version.format}-{version.content_hash[:12]}.jsonl"


def dataset_metadata(version: DatasetVersion) -> dict:
    """The version as the API and the pages describe it."""
    return {
        "uid": str(version.uid),
        "campaign": version.campaign.slug,
        "format": version.format,
        "filters": version.filters,
        "counts": version.counts,
        "rubric_versions": version.rubric_versions,
        "content_hash": version.content_hash,
        "size_bytes": version.size_bytes,
        "created_by": version.created_by.get_username() if version.created_by_id else None,
        "created_at": version.created_at.isoformat(),
    }
