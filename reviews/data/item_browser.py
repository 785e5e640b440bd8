"""The item browser's query builder: filters, search, sorting and keyset pagination.

Everything here is plain query building that tests call directly; the view only parses the
query string (`ItemFilter.from_params`) and renders a `Page`. Pagination is by keyset (the
last row's sort value and id), never OFFSET, so page 1,000 costs what page 1 costs.
"""

import json
from dataclasses import dataclass, field, fields
from urllib.parse import urlencode

from django.db import connection
from django.db.models import Count, Exists, F, FilteredRelation, FloatField, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Substr
from django.utils import timezone

from reviews.models import Answer, Assignment, Escalation, Item, Judgment, LabelKind, Prompt, Response, RubricVersion

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

STATUSES = {
    "unlabeled": "Unlabeled",
    "in_progress": "In progress",
    "resolved": "Resolved",
    "escalated": "Escalated",
    "adjudicated": "Adjudicated",
    "gold": "Gold",
    "excluded": "Excluded",
}

# Sort key -> (label, column, descending). Scores of items the run in force did not score sort
# as -1, after every scored item when descending.
SORTS = {
    "-id": ("Newest first", "id", True),
    "id": ("Oldest first", "id", False),
    "-utility": ("Utility, highest first", "sort_utility", True),
    "utility": ("Utility, lowest first", "sort_utility", False),
    "-risk": ("Risk, highest first", "sort_risk", True),
    "risk": ("Risk, lowest first", "sort_risk", False),
    "-judgments": ("Most judgments first", "human_judgments", True),
    "judgments": ("Fewest judgments first", "human_judgments", False),
}
DEFAULT_SORT = "-id"
UNSCORED = -1.0


class FilterError(ValueError):
    """A filter value in the query string that cannot be used; the message says which and why."""


def _float(params, name: str, errors: list[str]) -> float | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        errors.append(f"{name.replace('_', ' ').capitalize()} must be a number between 0 and 1, not {raw!r}.")
        return None
    if not 0 <= value <= 1:
        errors.append(f"{name.replace('_', ' ').capitalize()} must be between 0 and 1.")
        return None
    return value


@dataclass
class ItemFilter:
    """The browser's filters, as they appear in the URL's query string."""

    status: str = ""
    tag: str = ""
    model: str = ""
    rubric_version: int | None = None
    utility_min: float | None = None
    utility_max: float | None = None
    risk_min: float | None = None
    risk_max: float | None = None
    disagreement: bool = False
    labeled_by: str = ""
    q: str = ""
    sort: str = DEFAULT_SORT
    errors: list[str] = field(default_factory=list, compare=False, repr=False)

    PARAMS = (
        "status",
        "tag",
        "model",
        "rubric_version",
        "utility_min",
        "utility_max",
        "risk_min",
        "risk_max",
        "disagreement",
        "labeled_by",
        "q",
        "sort",
    )

    @classmethod
    def from_params(cls, params) -> "ItemFilter":
        """Parse a query string (a QueryDict or dict); unusable values are dropped and listed in `errors`."""
        errors: list[str] = []
        status = (params.get("status") or "").strip()
        if status and status not in STATUSES:
            errors.append(f"Unknown status {status!r}; choose one of {', '.join(STATUSES)}.")
            status = ""
        sort = (params.get("sort") or "").strip() or DEFAULT_SORT
        if sort not in SORTS:
            errors.append(f"Unknown sort {sort!r}.")
            sort = DEFAULT_SORT
        rubric_version = None
        raw_version = (params.get("rubric_version") or "").strip().lstrip("v")
        if raw_version:
            if raw_version.isdigit():
                rubric_version = int(raw_version)
            else:
                errors.append(f"Rubric version must be a version number, not {raw_version!r}.")
        f = cls(
            status=status,
            tag=(params.get("tag") or "").strip(),
            model=(params.get("model") or "").strip(),
            rubric_version=rubric_version,
            utility_min=_float(params, "utility_min", errors),
            utility_max=_float(params, "utility_max", errors),
            risk_min=_float(params, "risk_min", errors),
            risk_max=_float(params, "risk_max", errors),
            disagreement=(params.get("disagreement") or "") in ("1", "on", "true", "yes"),
            labeled_by=(params.get("labeled_by") or "").strip(),
            q=(params.get("q") or "").strip()[:200],
            sort=sort,
        )
        for low, high, name in (("utility_min", "utility_max", "Utility"), ("risk_min", "risk_max", "Risk")):
            lo, hi = getattr(f, low), getattr(f, high)
            if lo is not None and hi is not None and lo > hi:
                errors.append(f"{name} range: the minimum is above the maximum.")
        f.errors = errors
        return f

    def as_params(self, **overrides) -> dict[str, str]:
        """The non-default filters as query-string values (what a shared URL carries)."""
        out = {}
        for f in fields(self):
            if f.name == "errors":
                continue
            value = overrides.get(f.name, getattr(self, f.name))
            if value in (None, "", False) or (f.name == "sort" and value == DEFAULT_SORT):
                continue
            out[f.name] = "1" if value is True else str(value)
        return out

    def querystring(self, after: str | None = None, **overrides) -> str:
        """The filter as a query string, with a page cursor when given."""
        params = self.as_params(**overrides)
        if after:
            params["after"] = after
        return urlencode(params)

    @property
    def is_filtered(self) -> bool:
        return bool(self.as_params(sort=DEFAULT_SORT))


def pairwise_criteria(campaign) -> list[str]:
    """Slugs of the pairwise criteria of the campaign's rubric (every version), for "has disagreement"."""
    slugs: set[str] = set()
    if campaign.rubric_id:
        for definition in RubricVersion.objects.filter(rubric_id=campaign.rubric_id).values_list(
            "definition", flat=True
        ):
            slugs.update(c["slug"] for c in definition.get("criteria", []) if c.get("kind") == "pairwise")
    return sorted(slugs) or ["preference"]


def live_leases(now=None):
    """Live, unexpired leases of the outer item."""
    now = now or timezone.now()
    return Assignment.objects.filter(item=OuterRef("pk"), status=Assignment.Status.LIVE, expires_at__gt=now)


def disagreement_filter(campaign) -> tuple[Q, dict]:
    """Two human judgments of the item whose pairwise answers differ, or an escalation raised by
    the disagreement rule.

    Written as scalar subqueries, which PostgreSQL evaluates row by row (through the judgment and
    answer indexes) and so stops with the page; an EXISTS under OR would be planned as a hashed
    subplan that reads every answer of the pool first.
    """
    most_values = (
        Answer.objects.filter(
            judgment__item_id=OuterRef("pk"),
            judgment__kind=LabelKind.HUMAN,
            response__isnull=True,
            criterion__in=pairwise_criteria(campaign),
        )
        .order_by()
        .values("criterion")
        .annotate(n=Count("value", distinct=True))
        .order_by("-n")
        .values("n")[:1]
    )
    by_rule = Escalation.objects.filter(item_id=OuterRef("pk"), rules__icontains="disagree").values("id")[:1]
    return Q(_split__gte=2) | Q(_by_rule__isnull=False), {
        "_split": Subquery(most_values, output_field=IntegerField()),
        "_by_rule": Subquery(by_rule, output_field=IntegerField()),
    }


def _tag_filter(tag: str) -> Q:
    if connection.features.supports_json_field_contains:
        return Q(tags__contains=[tag])
    # SQLite has no JSON containment: match the quoted tag in the list's JSON text.
    return Q(tags__icontains=json.dumps(tag))


# Above this many matching prompts or responses a search term counts as common (see search_filter).
SPARSE_MATCHES = 2000


def search_filter(campaign, q: str) -> Q:
    """Items whose prompt or either response contains the text (case-insensitive), or whose
    external id is the text.

    Two plans, chosen by a bounded probe: a rare term's matching prompts and responses are
    found first (a trigram index serves it on PostgreSQL) and items looked up by them; a common
    term is checked item by item in the page's order, which meets a page of matches quickly
    (collecting every match of a common term would read the whole pool's text).
    """
    prompts = Prompt.objects.filter(campaign=campaign, text__icontains=q)
    responses = Response.objects.filter(prompt__campaign=campaign, text__icontains=q)
    sparse = _estimated_rows(prompts) <= SPARSE_MATCHES and _estimated_rows(responses) <= SPARSE_MATCHES
    if sparse:
        prompt_ids = list(prompts.values_list("id", flat=True)[: SPARSE_MATCHES + 1])
        sparse = len(prompt_ids) <= SPARSE_MATCHES
    if sparse:
        response_ids = list(responses.values_list("id", flat=True)[: SPARSE_MATCHES + 1])
        sparse = len(response_ids) <= SPARSE_MATCHES
    if sparse:
        return (
            Q(external_id=q)
            | Q(prompt_id__in=prompt_ids)
            | Q(response_a_id__in=response_ids)
            | Q(response_b_id__in=response_ids)
        )
    # Joined texts, tested row by row: PostgreSQL would turn EXISTS into hashed subplans that read every text.
    return (
        Q(external_id=q)
        | Q(prompt__text__icontains=q)
        | Q(response_a__text__icontains=q)
        | Q(response_b__text__icontains=q)
    )


def _estimated_rows(queryset) -> float:
    """PostgreSQL's own estimate of the rows a query returns (planning only, no execution); 0 elsewhere.

    The planner matches a LIKE pattern against its sample of the column, so a common term is
    recognised without running the search; a rare one is then confirmed by the bounded probe.
    """
    if connection.vendor != "postgresql":
        return 0
    plan = json.loads(queryset.values("id").explain(format="json"))
    return plan[0]["Plan"]["Plan Rows"]


def status_filter(status: str, now=None) -> Q:
    """The item flags (and live leases) behind each status of the browser."""
    open_pool = Q(resolved=False, escalated=False, excluded=False)
    leased = Exists(live_leases(now))
    return {
        "unlabeled": open_pool & Q(human_judgments=0) & ~leased,
        "in_progress": open_pool & (Q(human_judgments__gt=0) | leased),
        "resolved": Q(resolved=True),
        "escalated": Q(escalated=True),
        "adjudicated": Q(adjudicated=True),
        "gold": Q(is_gold=True),
        "excluded": Q(excluded=True),
    }[status]


def filtered_items(campaign, f: ItemFilter, *, now=None):
    """The campaign's items matching the filter, with `utility`, `risk` (None when the run in
    force did not score the item, or there is no run) and their sort columns annotated."""
    qs = Item.objects.filter(campaign=campaign)
    if campaign.scoring_run_id:
        qs = qs.annotate(
            current=FilteredRelation("scores", condition=Q(scores__run_id=campaign.scoring_run_id))
        ).annotate(utility=F("current__utility"), risk=F("current__risk"))
    else:
        qs = qs.annotate(utility=Value(None, FloatField()), risk=Value(None, FloatField()))
    qs = qs.annotate(
        sort_utility=Coalesce(F("utility"), Value(UNSCORED)), sort_risk=Coalesce(F("risk"), Value(UNSCORED))
    )
    if f.status:
        qs = qs.filter(status_filter(f.status, now))
    if f.tag:
        qs = qs.filter(_tag_filter(f.tag))
    if f.model:
        qs = qs.filter(Q(response_a__model=f.model) | Q(response_b__model=f.model))
    if f.rubric_version is not None:
        qs = qs.filter(
            Exists(
                Judgment.objects.filter(
                    item=OuterRef("pk"),
                    rubric_version__rubric_id=campaign.rubric_id,
                    rubric_version__number=f.rubric_version,
                )
            )
        )
    for name, lookup in (
        ("utility_min", "utility__gte"),
        ("utility_max", "utility__lte"),
        ("risk_min", "risk__gte"),
        ("risk_max", "risk__lte"),
    ):
        if getattr(f, name) is not None:
            qs = qs.filter(**{lookup: getattr(f, name)})
    if f.disagreement:
        condition, annotations = disagreement_filter(campaign)
        qs = qs.alias(**annotations).filter(condition)
    if f.labeled_by:
        qs = qs.filter(Exists(Judgment.objects.filter(item=OuterRef("pk"), annotator__name=f.labeled_by)))
    if f.q:
        qs = qs.filter(search_filter(campaign, f.q))
    return qs


def matching_ids(campaign, f: ItemFilter) -> list[int]:
    """Ids of every item of the filter (for a bulk action on the whole filter)."""
    return list(filtered_items(campaign, f).order_by("id").values_list("id", flat=True))


# -- keyset pagination ---------------------------------------------------------------------------


def encode_cursor(value, item_id: int) -> str:
    return f"{value!r}~{item_id}" if value is not None else f"~{item_id}"


def decode_cursor(raw: str | None, sort: str):
    """(sort value, id) from a cursor string; None for a missing or malformed one (first page)."""
    if not raw or "~" not in raw:
        return None
    value_text, _, id_text = raw.rpartition("~")
    try:
        item_id = int(id_text)
        column = SORTS[sort][1]
        value = int(value_text) if column in ("id", "human_judgments") else float(value_text)
    except (ValueError, KeyError):
        return None
    return value, item_id


@dataclass
class Row:
    id: int
    external_id: str
    prompt: str
    models: tuple[str, str]
    tags: list
    human_judgments: int
    utility: float | None
    risk: float | None
    created_at: object
    flags: dict
    leased: bool = False

    @property
    def status(self) -> str:
        """The row's headline status (an item can be gold and anything else too)."""
        f = self.flags
        if f["excluded"]:
            return "excluded"
        if f["escalated"]:
            return "escalated"
        if f["adjudicated"]:
            return "adjudicated"
        if f["resolved"]:
            return "resolved"
        if self.human_judgments or self.leased:
            return "in_progress"
        return "unlabeled"

    @property
    def status_label(self) -> str:
        return STATUSES[self.status]


@dataclass
class Page:
    rows: list[Row]
    next_cursor: str | None
    sort: str
    page_size: int

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None


def _keyset(qs, column: str, descending: bool, cursor):
    """Rows after the cursor in (column, id) order, the order applied."""
    if cursor is not None:
        value, last_id = cursor
        if column == "id":
            qs = qs.filter(id__lt=last_id) if descending else qs.filter(id__gt=last_id)
        elif descending:
            qs = qs.filter(Q(**{f"{column}__lt": value}) | Q(**{column: value, "id__lt": last_id}))
        else:
            qs = qs.filter(Q(**{f"{column}__gt": value}) | Q(**{column: value, "id__gt": last_id}))
    if column == "id":
        return qs.order_by("-id" if descending else "id")
    return qs.order_by(*((f"-{column}", "-id") if descending else (column, "id")))


def _score_sorted(qs, campaign, column: str, descending: bool, cursor, limit: int) -> list[dict]:
    """Items by a score of the run in force, then the items it did not score (newest first).

    The scored items are read by the raw score (an inner join that the (run, score, item) index
    serves in order); the sort column only names the cursor's segment: UNSCORED for the rest.
    """
    raw = "utility" if column == "sort_utility" else "risk"
    rows: list[dict] = []
    if campaign.scoring_run_id and (cursor is None or cursor[0] != UNSCORED):
        scored = _keyset(qs.filter(**{f"{raw}__isnull": False}), raw, descending, cursor)
        rows = _rows(scored, column, limit)
        cursor = None
    if len(rows) < limit:
        unscored = qs.filter(**{f"{raw}__isnull": True}) if campaign.scoring_run_id else qs
        rows += _rows(_keyset(unscored, "id", True, cursor), column, limit - len(rows))
    return rows


def _rows(qs, column: str, limit: int) -> list[dict]:
    return list(
        qs.annotate(
            prompt_snippet=Substr("prompt__text", 1, 160),
            model_a=F("response_a__model"),
            model_b=F("response_b__model"),
        ).values(
            "id",
            "external_id",
            "prompt_snippet",
            "model_a",
            "model_b",
            "tags",
            "human_judgments",
            "utility",
            "risk",
            "created_at",
            "excluded",
            "escalated",
            "adjudicated",
            "resolved",
            "is_gold",
            column,
        )[:limit]
    )


def page(campaign, f: ItemFilter, *, after: str | None = None, size: int = PAGE_SIZE, now=None) -> Page:
    """One page of the filter's items in the sort order, starting after the cursor."""
    size = max(1, min(size, MAX_PAGE_SIZE))
    _, column, descending = SORTS[f.sort]
    qs = filtered_items(campaign, f, now=now)
    cursor = decode_cursor(after, f.sort)
    if column in ("sort_utility", "sort_risk"):
        values = _score_sorted(qs, campaign, column, descending, cursor, size + 1)
    else:
        values = _rows(_keyset(qs, column, descending, cursor), column, size + 1)
    more = len(values) > size
    values = values[:size]
    leased = set(
        Assignment.objects.filter(
            item_id__in=[v["id"] for v in values],
            status=Assignment.Status.LIVE,
            expires_at__gt=now or timezone.now(),
        ).values_list("item_id", flat=True)
    )
    rows = [
        Row(
            id=v["id"],
            external_id=v["external_id"],
            prompt=v["prompt_snippet"],
            models=(v["model_a"], v["model_b"]),
            tags=v["tags"],
            human_judgments=v["human_judgments"],
            utility=v["utility"],
            risk=v["risk"],
            created_at=v["created_at"],
            flags={k: v[k] for k in ("excluded", "escalated", "adjudicated", "resolved", "is_gold")},
            leased=v["id"] in leased,
        )
        for v in values
    ]
    next_cursor = encode_cursor(values[-1][column], values[-1]["id"]) if more and values else None
    return Page(rows=rows, next_cursor=next_cursor, sort=f.sort, page_size=size)


FACETS_SECONDS = 60


def facets(campaign) -> dict:
    """The filter form's choices, cached for a minute per campaign and pool size (an import shows
    at once; a new annotator within a minute): reading them costs a scan of the pool."""
    from django.core.cache import cache

    last = Item.objects.filter(campaign=campaign).order_by("-id").values_list("id", flat=True).first()
    key = f"reviews:item-facets:{campaign.id}:{last}:{campaign.rubric_id}"
    cached = cache.get(key)
    if cached is None:
        cached = compute_facets(campaign)
        cache.set(key, cached, FACETS_SECONDS)
    return cached


def compute_facets(campaign) -> dict:
    """Choices for the filter form: the campaign's tags, models, rubric versions and human annotators."""
    from reviews.models import Annotator

    tags: set[str] = set()
    # Tags are few per item; distinct tag lists are far fewer than items.
    for tag_list in Item.objects.filter(campaign=campaign).values_list("tags", flat=True).distinct()[:5000]:
        if isinstance(tag_list, list):
            tags.update(str(t) for t in tag_list)
    models = sorted(
        set(Response.objects.filter(prompt__campaign=campaign).values_list("model", flat=True).distinct()[:500])
    )
    versions = (
        list(
            RubricVersion.objects.filter(rubric_id=campaign.rubric_id, published_at__isnull=False)
            .order_by("number")
            .values_list("number", flat=True)
        )
        if campaign.rubric_id
        else []
    )
    annotators = list(
        Annotator.objects.filter(
            Exists(Judgment.objects.filter(annotator=OuterRef("pk"), kind=LabelKind.HUMAN, item__campaign=campaign))
        )
        .order_by("name")
        .values_list("name", flat=True)[:500]
    )
    return {"tags": sorted(tags), "models": models, "rubric_versions": versions, "annotators": annotators}


# -- one item's whole story ---------------------------------------------------------------------


@dataclass
class Story:
    """Everything the item detail page shows: the item, its scores, labels, decisions and log."""

    item: Item
    scores: list
    judgments: list
    model_labels: list
    escalations: list
    adjudications: list
    final_answers: list
    events: list
    leases: list
    response_keys: dict = field(default_factory=dict)


def item_story(campaign, item_id: int) -> Story | None:
    """An item of the campaign with its scores per run, every judgment, escalation, adjudication,
    model label, final answer, lease and feedback event (oldest first); None when it is not there."""
    from reviews.models import Adjudication, FeedbackEvent, FinalAnswer, ItemScore

    item = (
        Item.objects.select_related("prompt", "response_a", "response_b").filter(campaign=campaign, id=item_id).first()
    )
    if item is None:
        return None
    keys = {item.response_a_id: item.response_a.key, item.response_b_id: item.response_b.key}
    judgments = list(
        Judgment.objects.filter(item=item)
        .select_related("annotator__user", "rubric_version__rubric", "settings_version", "left_response")
        .prefetch_related("answers")
        .order_by("created_at", "id")
    )
    finals = FinalAnswer.objects.filter(Q(item=item) | Q(response_id__in=list(keys))).order_by("criterion")
    return Story(
        item=item,
        scores=list(
            ItemScore.objects.filter(item=item).select_related("run").order_by("-run__requested_at", "-run_id")
        ),
        judgments=[j for j in judgments if j.kind == LabelKind.HUMAN],
        model_labels=[j for j in judgments if j.kind == LabelKind.MODEL],
        escalations=list(
            Escalation.objects.filter(item=item).select_related("opened_by", "claimed_by").order_by("created_at", "id")
        ),
        adjudications=list(
            Adjudication.objects.filter(item=item)
            .select_related("lead", "rubric_version__rubric", "escalation")
            .prefetch_related("answers")
            .order_by("created_at", "id")
        ),
        final_answers=list(finals),
        events=list(
            FeedbackEvent.objects.filter(item=item)
            .select_related("actor", "annotator", "rubric_version__rubric", "settings_version")
            .order_by("created_at", "id")
        ),
        leases=list(Assignment.objects.filter(item=item).select_related("user").order_by("created_at", "id")),
        response_keys=keys,
    )
