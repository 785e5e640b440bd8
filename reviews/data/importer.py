"""Pool import (FORMATS.md section 1): streamed, validated line by line, all or nothing."""

import gc
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import orjson
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.utils import timezone

from reviews.core import sql
from reviews.core.exceptions import ImportFailed
from reviews.core.phases import Phases
from reviews.core.roles import role_of
from reviews.data.pool_format import LineError, LineIn, parse_line
from reviews.leads import final_answers
from reviews.models import (
    Adjudication,
    Annotator,
    Answer,
    Campaign,
    FeedbackEvent,
    FinalAnswer,
    Item,
    Judgment,
    LabelKind,
    Prompt,
    Response,
    Source,
)

MAX_REPORTED_ERRORS = 200
PHASES = (
    "read+parse",
    "lookups",
    "prompts+responses",
    "items",
    "labels",
    "final answers",
    "events",
    "commit",
    "analyze",
)


@dataclass
class ImportReport:
    lines: int = 0
    created: int = 0
    skipped: int = 0
    conflicts: int = 0
    labels: int = 0
    error_count: int = 0
    errors: list[str] = field(default_factory=list)
    # Seconds per phase (read+parse, lookups, writes per table, commit...): see bench_import.
    phases: Phases = field(default_factory=lambda: Phases(PHASES))

    def add_error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(message)

    def counts(self) -> dict:
        keys = ("lines", "created", "skipped", "conflicts", "labels", "error_count")
        return {key: getattr(self, key) for key in keys}

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def summary(self) -> str:
        return (
            f"{self.lines} lines: {self.created} created, {self.skipped} skipped, "
            f"{self.conflicts} conflicts, {self.error_count} errors, {self.labels} labels stored"
        )


def read_lines(stream, max_line_bytes: int):
    """Yield (line number, bytes or None when the line is over the limit) without holding more than one line."""
    number = 0
    while True:
        chunk = stream.readline(max_line_bytes + 1)
        if not chunk:
            return
        number += 1
        if len(chunk) > max_line_bytes and not chunk.endswith(b"\n"):
            # Drain the rest of the line without keeping it.
            while not chunk.endswith(b"\n"):
                chunk = stream.readline(1 << 20)
                if not chunk:
                    break
            yield number, None
            continue
        yield number, chunk


class PoolImporter:
    def __init__(self, campaign, *, actor=None, source_name="", progress=None):
        self.campaign = campaign
        self.actor = actor
        self.source_name = source_name
        self.progress = progress
        self.report = ImportReport()
        self.phases = self.report.phases
        self.rubric_version = campaign.rubric_version()
        self.rubric = self.rubric_version.parsed if self.rubric_version else None
        self.batch_size = django_settings.REVIEWS_IMPORT_BATCH_SIZE
        self.max_line_bytes = django_settings.REVIEWS_IMPORT_MAX_LINE_BYTES
        self._annotators: dict[str, int] = {}
        self._next_analyze = ANALYZE_FROM
        self.actor_id = getattr(actor, "id", None)
        actor_role = role_of(actor) if actor is not None else None
        self.role = actor_role.value if actor_role else ""

    def run(self, stream) -> ImportReport:
        """Import a binary stream of JSON Lines; raise ImportFailed (nothing written) on any error."""
        # The objects alive before the import (the whole app) are left out of the garbage
        # collector's scans while it runs: its full collections over them cost ~10% of the CPU.
        freeze = gc.get_freeze_count() == 0  # not when someone else froze them (a preloading server)
        if freeze:
            gc.freeze()
        try:
            return self._run(stream)
        finally:
            if freeze:
                gc.unfreeze()

    def _run(self, stream) -> ImportReport:
        phases = self.phases
        try:
            with transaction.atomic():
                # One import per campaign at a time: a concurrent one would collide on the unique
                # indexes with a database error instead of reporting per-line conflicts.
                Campaign.objects.select_for_update().filter(pk=self.campaign.pk).first()
                self.settings_version = self.campaign.settings
                batch: list[tuple[int, LineIn]] = []
                started = time.perf_counter()
                writing = 0.0  # seconds of the loop spent in _write; the rest is reading and parsing
                for number, raw in read_lines(stream, self.max_line_bytes):
                    if self.progress:
                        self.progress(number, 0 if raw is None else len(raw))
                    parsed = self._parse(number, raw)
                    if parsed is not None:
                        batch.append((number, parsed))
                    if len(batch) >= self.batch_size:
                        writing += self._timed_write(batch)
                        batch = []
                if batch:
                    writing += self._timed_write(batch)
                phases.add("read+parse", time.perf_counter() - started - writing)
                if self.report.lines == 0 and self.report.error_count == 0:
                    self.report.add_error("the file is empty: no items to import")
                if not self.report.ok:
                    raise ImportFailed(self.report)
                with phases("events"):
                    FeedbackEvent.record(
                        self.campaign,
                        FeedbackEvent.Action.IMPORTED,
                        {"source": self.source_name, **self.report.counts()},
                        actor=self.actor_id,
                        role=self.role,
                        rubric_version=self.rubric_version,
                        settings_version=self.settings_version,
                        scoring_run=None,
                    )
                # On PostgreSQL the deferred foreign-key checks run at commit.
                committing = time.perf_counter()
            phases.add("commit", time.perf_counter() - committing)
        except ImportFailed:
            self.report.created = 0
            self.report.labels = 0
            raise
        if connection.vendor == "postgresql" and self.report.created:
            # Fresh statistics, so the planner knows the tables grew (autovacuum may take minutes).
            with phases("analyze"), connection.cursor() as cursor:
                cursor.execute("ANALYZE " + ", ".join(m._meta.db_table for m in ANALYZED))
        return self.report

    def _timed_write(self, batch) -> float:
        started = time.perf_counter()
        self._write(batch)
        return time.perf_counter() - started

    def _parse(self, number: int, raw: bytes | None) -> LineIn | None:
        if raw is None:
            self.report.lines += 1
            self.report.add_error(f"line {number}: longer than the limit of {self.max_line_bytes} bytes")
            return None
        if not raw.strip():
            return None  # blank lines (a trailing newline) are not items
        self.report.lines += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.report.add_error(f"line {number}: not valid UTF-8 ({exc.reason} at byte offset {exc.start})")
            return None
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            self.report.add_error(f"line {number}: invalid JSON: {exc.msg} (column {exc.colno})")
            return None
        try:
            return parse_line(obj, self.rubric)
        except LineError as exc:
            for message in exc.messages:
                self.report.add_error(f"line {number}: {message}")
            return None

    # -- writing ---------------------------------------------------------------------------

    def _conflict(self, number: int, message: str) -> None:
        self.report.conflicts += 1
        self.report.add_error(f"line {number}: conflict: {message}")

    def _write(self, batch: list[tuple[int, LineIn]]) -> None:
        campaign, phases = self.campaign, self.phases
        phases.start()
        existing_items = dict(
            sql.select_any(
                "SELECT external_id, content_hash FROM reviews_item WHERE campaign_id = %s AND external_id {0}",
                [campaign.id],
                {line.external_id for _, line in batch},
            )
        )
        fresh: list[tuple[int, LineIn]] = []
        for number, line in batch:
            known = existing_items.get(line.external_id)
            if known is None:
                existing_items[line.external_id] = line.content_hash
                fresh.append((number, line))
            elif known == line.content_hash:
                self.report.skipped += 1
            else:
                self._conflict(number, f"external_id {line.external_id!r} is already imported with different content")
        phases.lap("lookups")
        if not fresh:
            return
        prompts = self._write_prompts(fresh)
        responses, new_responses = self._write_responses(fresh, prompts)

        now = timezone.now()
        item_ids = sql.reserve_ids(Item, len(fresh))
        labels = self._label_rows(fresh, item_ids, prompts, responses, now)
        phases.lap("labels")
        # Final answers from the labels in hand: the item-level targets of fresh items and the
        # responses created in this batch have all their labels in this batch, so they are decided
        # here and the items go in with their final flags. Labeled items that show a response
        # from before the batch (a prompt shared with an earlier batch or import) are refreshed
        # from the database after the inserts.
        wanted = labels.wanted_in_hand(new_responses, self.settings_version.overlap_k)
        criteria = self.rubric.criteria if self.rubric else ()
        item_rows, to_refresh = [], []
        for item_id, (_, line) in zip(item_ids, fresh, strict=True):
            prompt_pk = prompts[line.prompt_id][0]
            a, b = (responses[(prompt_pk, r.key)][0] for r in line.responses)
            n_human, adjudicated, resolved = 0, False, False
            if line.labels:
                n_human, adjudicated = labels.flags[item_id]
                required = final_answers.required_keys(criteria, item_id, a, b)
                resolved = final_answers.is_resolved(n_human, adjudicated, required, wanted.keys())
                if a not in new_responses or b not in new_responses:
                    to_refresh.append(item_id)
            item_rows.append(
                (
                    item_id,
                    campaign.id,
                    line.external_id,
                    prompt_pk,
                    a,
                    b,
                    line.risk_prior,
                    line.tags,
                    line.metadata,
                    line.content_hash,
                    now,
                    False,
                    line.gold is not None,
                    line.gold,
                    n_human,
                    resolved,
                    adjudicated,
                    False,
                )
            )
        phases.lap("final answers")
        sql.insert_rows(Item, ITEM_COLUMNS, item_rows)
        phases.lap("items")
        self.report.created += len(item_rows)
        sql.insert_rows(Judgment, JUDGMENT_COLUMNS, labels.judgments)
        sql.insert_rows(Adjudication, ADJUDICATION_COLUMNS, labels.adjudications)
        sql.insert_rows(Answer, ANSWER_COLUMNS, labels.answers)
        phases.lap("labels")
        sql.insert_rows(FinalAnswer, final_answers.FINAL_COLUMNS, final_answers.final_rows(campaign.id, wanted, now))
        if to_refresh:
            final_answers.refresh(campaign, to_refresh, savepoint=False)
        phases.lap("final answers")
        self._write_events(fresh, item_ids, labels.rubric_id, now)
        phases.lap("events")
        if connection.vendor == "postgresql" and self.report.created >= self._next_analyze:
            # Statistics that follow the tables as the import grows them: with the counts of
            # before the import, PostgreSQL answers the lookups above by scanning every row of
            # the campaign (a lookup's cost grows with the table: quadratic in the import's size).
            # Each doubling of the import pays for one sample of the probed tables.
            self._next_analyze *= 2
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE " + ", ".join(m._meta.db_table for m in PROBED))
            phases.lap("analyze")

    def _write_prompts(self, fresh) -> dict[str, tuple[int, str]]:
        """Prompt external id -> (pk, content hash), inserting the new ones."""
        prompts = {
            ext: (pk, digest)
            for pk, ext, digest in sql.select_any(
                "SELECT id, external_id, content_hash FROM reviews_prompt WHERE campaign_id = %s AND external_id {0}",
                [self.campaign.id],
                {line.prompt_id for _, line in fresh},
            )
        }
        self.phases.lap("lookups")
        new = []
        for number, line in fresh:
            known = prompts.get(line.prompt_id)
            if known is None:
                prompts[line.prompt_id] = (None, line.prompt_hash)
                new.append(line)
            elif known[1] != line.prompt_hash:
                self._conflict(number, f"prompt_id {line.prompt_id!r} already has a different prompt")
        rows = []
        for pk, line in zip(sql.reserve_ids(Prompt, len(new)), new, strict=True):
            prompts[line.prompt_id] = (pk, line.prompt_hash)
            rows.append((pk, self.campaign.id, line.prompt_id, line.prompt, line.prompt_text, line.prompt_hash))
        sql.insert_rows(Prompt, ["id", "campaign_id", "external_id", "content", "text", "content_hash"], rows)
        self.phases.lap("prompts+responses")
        return prompts

    def _write_responses(self, fresh, prompts) -> tuple[dict[tuple[int, str], tuple], set[int]]:
        """(prompt pk, key) -> (pk, model, text), inserting the new ones; and the new ones' ids."""
        responses = {
            (prompt_pk, key): (pk, model, text)
            for pk, prompt_pk, key, model, text in sql.select_any(
                "SELECT id, prompt_id, key, model, text FROM reviews_response WHERE prompt_id {0}",
                [],
                {prompts[line.prompt_id][0] for _, line in fresh} - {None},
            )
        }
        self.phases.lap("lookups")
        new = []
        for number, line in fresh:
            prompt_pk = prompts[line.prompt_id][0]
            for resp in line.responses:
                known = responses.get((prompt_pk, resp.key))
                if known is None:
                    responses[(prompt_pk, resp.key)] = (None, resp.model, resp.text)
                    new.append((prompt_pk, resp))
                elif known[1] != resp.model or known[2] != resp.text:
                    self._conflict(
                        number,
                        f"response {resp.key!r} of prompt {line.prompt_id!r} is already imported with a different "
                        "model or text",
                    )
        rows = []
        for pk, (prompt_pk, resp) in zip(sql.reserve_ids(Response, len(new)), new, strict=True):
            responses[(prompt_pk, resp.key)] = (pk, resp.model, resp.text)
            rows.append((pk, prompt_pk, resp.key, resp.model, resp.text))
        sql.insert_rows(Response, ["id", "prompt_id", "key", "model", "text"], rows)
        self.phases.lap("prompts+responses")
        return responses, {row[0] for row in rows}

    def _annotator(self, name: str) -> int:
        pk = self._annotators.get(name)
        if pk is None:
            pk = Annotator.objects.get_or_create(name=name, user=None)[0].pk
            self._annotators[name] = pk
        return pk

    def _label_rows(self, fresh, item_ids, prompts, responses, now) -> "LabelRows":
        """The lines' labels as judgment, adjudication and answer rows, with what final answers need."""
        out = LabelRows()
        groups = []  # (item_id, prompt_pk, annotator, kind, labels)
        for item_id, (_, line) in zip(item_ids, fresh, strict=True):
            if not line.labels:
                continue
            by_annotator: dict[tuple[str, str], list] = defaultdict(list)
            for label in line.labels:
                by_annotator[(label.annotator, label.kind)].append(label)
            prompt_pk = prompts[line.prompt_id][0]
            groups.extend((item_id, prompt_pk, name, kind, labels) for (name, kind), labels in by_annotator.items())
            kinds = [kind for _, kind in by_annotator]
            out.flags[item_id] = (kinds.count("human"), "lead" in kinds)
        if not groups:
            return out
        n_leads = sum(1 for g in groups if g[3] == "lead")
        judgment_ids = iter(sql.reserve_ids(Judgment, len(groups) - n_leads))
        adjudication_ids = iter(sql.reserve_ids(Adjudication, n_leads))
        rubric_id, settings_id = self.rubric_version.id, self.settings_version.id
        out.rubric_id = rubric_id
        judgments, adjudications, answers = out.judgments, out.adjudications, out.answers
        votes, latest = out.votes, out.latest
        for item_id, prompt_pk, name, kind, labels in groups:
            created = min((lb.created_at for lb in labels if lb.created_at), default=now)
            rationale = "\n\n".join(dict.fromkeys(lb.rationale for lb in labels if lb.rationale))
            annotator = self._annotator(name)
            if kind == "lead":
                parent = next(adjudication_ids)
                adjudications.append(
                    (parent, item_id, annotator, Source.IMPORT, rationale, False, "", rubric_id, settings_id, created)
                )
            else:
                parent = next(judgment_ids)
                confidences = [lb.confidence for lb in labels if lb.confidence is not None]
                judgments.append(
                    (
                        parent,
                        item_id,
                        annotator,
                        LabelKind.HUMAN if kind == "human" else LabelKind.MODEL,
                        Source.IMPORT,
                        sum(confidences) / len(confidences) if confidences else None,
                        rationale,
                        rubric_id,
                        settings_id,
                        created,
                    )
                )
            for label in labels:
                response = responses[(prompt_pk, label.response)][0] if label.response else None
                answers.append(
                    (
                        None if kind == "lead" else parent,
                        parent if kind == "lead" else None,
                        label.criterion,
                        response,
                        label.value,
                        label.confidence,
                    )
                )
                # Target keys as reviews.leads.final_answers has them; model labels never count.
                key = (label.criterion, response if response is not None else ("item", item_id))
                if kind == "human":
                    votes[key][label.value].add(annotator)
                elif kind == "lead":
                    final_answers.note_adjudication(latest, key, label.value, created, parent)
        return out

    def _write_events(self, fresh, item_ids, rubric_id, now) -> None:
        """Labels are human feedback entering the system: one event per labeled item."""
        events = []
        for item_id, (_, line) in zip(item_ids, fresh, strict=True):
            if not line.labels:
                continue
            self.report.labels += len(line.labels)
            events.append((item_id, {"labels": len(line.labels)}))
        FeedbackEvent.record(
            self.campaign,
            FeedbackEvent.Action.IMPORTED,
            {"source": self.source_name},
            actor=self.actor_id,
            role=self.role,
            rubric_version=rubric_id,
            settings_version=self.settings_version.id,
            scoring_run=None,
            created_at=now,
            per_item=events,
        )


@dataclass
class LabelRows:
    """One batch's labels as rows, with human votes ({key: {value: {annotator ids}}}), the latest
    adjudicated value per key (see final_answers.note_adjudication) and each labeled item's
    (human judgments, adjudicated)."""

    judgments: list = field(default_factory=list)
    adjudications: list = field(default_factory=list)
    answers: list = field(default_factory=list)
    votes: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(set)))
    latest: dict = field(default_factory=dict)
    flags: dict = field(default_factory=dict)
    rubric_id: int | None = None

    def wanted_in_hand(self, new_responses: set[int], k: int) -> dict:
        """The final answers of the targets whose labels are all in this batch (every item-level
        target of a fresh item, and the responses created in the batch), as final_answers decides them."""

        def in_hand(key) -> bool:
            return isinstance(key[1], tuple) or key[1] in new_responses

        votes = {
            key: Counter({value: len(who) for value, who in by_value.items()})
            for key, by_value in self.votes.items()
            if in_hand(key)
        }
        adjudicated = {key: value for key, (value, _) in self.latest.items() if in_hand(key)}
        return final_answers.wanted_answers(votes, adjudicated, k)


PROBED = (Item, Prompt, Response)
ANALYZE_FROM = 4000  # items imported before the first ANALYZE during an import (PostgreSQL)
ANALYZED = (Prompt, Response, Item, Judgment, Adjudication, Answer, FinalAnswer)
ITEM_COLUMNS = [
    "id",
    "campaign_id",
    "external_id",
    "prompt_id",
    "response_a_id",
    "response_b_id",
    "risk_prior",
    "tags",
    "metadata",
    "content_hash",
    "created_at",
    "excluded",
    "is_gold",
    "gold_answers",
    "human_judgments",
    "resolved",
    "adjudicated",
    "escalated",
]
JUDGMENT_COLUMNS = [
    "id",
    "item_id",
    "annotator_id",
    "kind",
    "source",
    "confidence",
    "rationale",
    "rubric_version_id",
    "settings_version_id",
    "created_at",
]
ANSWER_COLUMNS = ["judgment_id", "adjudication_id", "criterion", "response_id", "value", "confidence"]
ADJUDICATION_COLUMNS = [
    "id",
    "item_id",
    "lead_id",
    "source",
    "rationale",
    "rubric_ambiguous",
    "ambiguity_note",
    "rubric_version_id",
    "settings_version_id",
    "created_at",
]


def import_pool(campaign, stream, **kwargs) -> ImportReport:
    """Import a pool file (binary stream) into a campaign; see PoolImporter."""
    return PoolImporter(campaign, **kwargs).run(stream)
