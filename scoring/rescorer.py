"""One rescoring run against the database: read rows by id, call the pure pipeline, save in bulk.

`Rescorer` loads a campaign's items chunk by chunk (texts' stored features, votes, final answers,
automated labels), trains the run's models (`scoring.pipeline.train`), scores every item,
selects the active set and writes the ItemScore rows, then switches `Campaign.scoring_run` to
the run in one transaction: until that commit the previous run's scores stay in force, so a
worker killed mid-run changes nothing that labelers see. `scoring.jobs` decides when runs
happen; `scoring.chunked` runs the same public steps (`compute_missing_features`, `train`,
`score_items`, `finish`) as chunk jobs.
"""

import io
import json
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from reviews.core import sql as bulk  # reviews.bulk before the re-layout; the body keeps the name
from reviews.leads import escalation
from reviews.models import (
    Annotator,
    Campaign,
    Escalation,
    FinalAnswer,
    Item,
    ItemScore,
    Judgment,
    LabelKind,
    Prompt,
    Response,
    ScoringRun,
)
from scoring import evidence, features, pipeline, selection

log = logging.getLogger(__name__)
Status = ScoringRun.Status
# Undecided targets whose automated labels the confusions are fitted on (all decided ones count).
EVIDENCE_SAMPLE = 50_000


class RunLost(Exception):
    """The run was marked failed (its heartbeat went stale) or overtaken before it could commit."""


def _with_features(rows: list) -> list:
    """Rows whose texts all have current features: items that arrived after the features phase
    wait for the next run. (Filtered here, not in SQL: `features IS NOT NULL` led PostgreSQL to scan.)"""
    return [row for row in rows if row[1] is not None and row[2] is not None and row[3] is not None]


def _tags(value) -> list:
    """An item's tags from a raw row (PostgreSQL decodes JSON, SQLite gives text)."""
    if isinstance(value, str):
        return json.loads(value) if value else []
    return value or []


@dataclass
class ScoreArrays:
    """Per-item values of one run, gathered chunk by chunk."""

    ids: list = field(default_factory=list)
    risk: list = field(default_factory=list)
    uncertainty: list = field(default_factory=list)
    p: list = field(default_factory=list)
    q: list = field(default_factory=list)
    h_keep: list = field(default_factory=list)
    eligible: list = field(default_factory=list)
    labeled: list = field(default_factory=list)
    judgments: list = field(default_factory=list)
    embeddings: list = field(default_factory=list)

    FLAT = ("ids", "eligible", "labeled", "judgments")
    STACKED = ("risk", "uncertainty", "p", "q", "h_keep", "embeddings")

    def to_bytes(self) -> bytes:
        """One chunk's values as an .npz blob (a chunk job hands them to the finishing job)."""
        buffer = io.BytesIO()
        arrays = {name: np.asarray(getattr(self, name)) for name in self.FLAT}
        for name in self.STACKED:
            parts = getattr(self, name)
            empty = np.zeros((0, pipeline.EMBEDDING_DIM) if name == "embeddings" else 0)
            arrays[name] = np.concatenate(parts) if parts else empty
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def join(cls, blobs) -> "ScoreArrays":
        """The chunks' values, in the order given, as one run's arrays."""
        out = cls()
        for blob in blobs:
            with np.load(io.BytesIO(blob)) as data:
                for name in cls.FLAT:
                    getattr(out, name).extend(data[name].tolist())
                for name in cls.STACKED:
                    if len(data[name]):
                        getattr(out, name).append(data[name])
        return out

    def stacked(self, name: str) -> np.ndarray:
        parts = getattr(self, name)
        if parts:
            return np.concatenate(parts)
        return np.zeros((0, pipeline.EMBEDDING_DIM) if name == "embeddings" else 0)


def layout_of(rubric) -> tuple[pipeline.Layout, str | None]:
    """The pipeline's view of a parsed rubric: its choice criteria and its (first) pairwise one."""
    criteria = [
        pipeline.Criterion(c.slug, tuple(o.value for o in c.options), c.per_response, c.risk_values)
        for c in (rubric.criteria if rubric else ())
        if c.kind == "choice"
    ]
    pairwise = next((c.slug for c in rubric.criteria if c.kind == "pairwise"), None) if rubric else None
    return pipeline.Layout(criteria), pairwise


# Columns of an item row (`Rescorer._item_rows`), by position.
ID, P_FEAT, A_FEAT, B_FEAT, PRIOR, RESOLVED, ESCALATED, EXCLUDED, JUDGED, KEY_A, KEY_B, TARGET, TAGS, RESP_A, RESP_B = (
    range(15)
)


class Rescorer:
    """One scoring run of one campaign; `progress(phase, done, total)` reports chunk progress."""

    def __init__(self, run: ScoringRun, progress=None):
        self.run = run
        self.campaign = Campaign.objects.select_related("rubric").get(pk=run.campaign_id)
        self.settings_version = self.campaign.settings
        self.rubric = getattr(self.campaign.rubric_version(), "parsed", None)
        self.progress = progress or (lambda phase, done, total: None)
        self.chunk = settings.SCORING_CHUNK_SIZE
        self.rng = np.random.default_rng(run.id)
        self.timings: dict[str, float] = {}
        # Seconds spent inside the pure scoring functions (the rest is database I/O).
        self.compute_seconds = 0.0
        self._last_beat = 0.0
        self.layout, self.pairwise = layout_of(self.rubric)
        self.choice = {c.slug: j for j, c in enumerate(self.layout.criteria, start=1)}
        self.values = {c.slug: {v: i for i, v in enumerate(c.values)} for c in self.layout.criteria}

    @property
    def weights(self) -> selection.Weights:
        s = self.settings_version
        return selection.Weights(s.lambda_risk, s.lambda_uncertainty, s.lambda_diversity)

    def record_settings(self) -> None:
        w = self.weights
        ScoringRun.objects.filter(pk=self.run.pk).update(
            settings_version=self.settings_version,
            weights={"risk": w.risk, "uncertainty": w.uncertainty, "diversity": w.diversity},
        )

    def execute(self) -> None:
        """The whole run in this process (scoring.chunked spreads the same steps over workers)."""
        self.record_settings()
        self.phase("features", self.compute_missing_features)
        trained = self.phase("train", self.train)
        arrays = self.phase("score", lambda: self.score_items(trained))
        self.finish(arrays, trained)

    def finish(self, arrays: "ScoreArrays", trained: pipeline.Trained) -> None:
        """Select the active set over every item's scores, write them, and commit the run."""
        result = self.phase("select", lambda: self._select(arrays, self.weights, trained))
        self.phase("write", lambda: self._write(arrays, result))
        self._commit(len(arrays.ids), trained, result)
        # After the commit, with the new risks in force: rules 2-4 over the pool (set-based).
        escalation.run_rules(self.campaign, trigger=f"scoring run {self.run.id}", scoring_run=self.run)

    @contextmanager
    def _computing(self):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.compute_seconds += time.perf_counter() - started

    # Each phase is timed and leaves a heartbeat.
    def phase(self, name: str, fn):
        self.beat(name)
        started = time.perf_counter()
        value = fn()
        self.timings[name] = round(time.perf_counter() - started, 3)
        return value

    def beat(self, phase: str | None = None) -> None:
        """Record liveness (at most once a second between phases: each beat is a write)."""
        now = time.monotonic()
        if phase is None and now - self._last_beat < 1.0:
            return
        self._last_beat = now
        changes = {"heartbeat_at": timezone.now()}
        if phase:
            changes["phase"] = phase
        ScoringRun.objects.filter(pk=self.run.pk).update(**changes)

    FEATURE_TABLES = {"prompt": Prompt, "response": Response}

    def compute_missing_features(self, only: str | None = None, lo: int = 0, hi: int | None = None) -> None:
        """Embed the texts that have no (current) features; `only`, `lo` and `hi` narrow it to one
        table's id range (a chunk job)."""
        for name, model in self.FEATURE_TABLES.items():
            if only is not None and name != only:
                continue
            table = model._meta.db_table
            where = (
                "campaign_id = %s"
                if model is Prompt
                else "prompt_id IN (SELECT id FROM reviews_prompt WHERE campaign_id = %s)"
            )
            last, end = lo - 1, hi if hi is not None else 2**62
            while True:
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"SELECT id, text FROM {table} WHERE {where} AND features_version != %s "  # noqa: S608
                        "AND id > %s AND id < %s ORDER BY id LIMIT %s",
                        [self.campaign.id, features.VERSION, last, end, self.chunk],
                    )
                    rows = cursor.fetchall()
                if not rows:
                    break
                last = rows[-1][0]
                vectors = features.to_bytes(features.text_features([text for _, text in rows]))
                with transaction.atomic():
                    bulk.update_rows(
                        model,
                        ["features", "features_version"],
                        [(blob, features.VERSION, pk) for blob, (pk, _) in zip(vectors, rows, strict=True)],
                    )
                self.beat()

    COLUMNS = (
        "i.id, p.features, ra.features, rb.features, i.risk_prior, i.resolved, i.escalated, i.excluded, "
        "i.human_judgments, ra.key, rb.key, i.judgment_target, i.tags, ra.id, rb.id"
    )
    JOINS = (
        "FROM reviews_item i JOIN reviews_prompt p ON p.id = i.prompt_id "
        "JOIN reviews_response ra ON ra.id = i.response_a_id JOIN reviews_response rb ON rb.id = i.response_b_id"
    )

    def _item_rows(self, item_ids=None, lo: int = 0, hi: int | None = None):
        """Yield chunks of item rows (the columns named at ID ... RESP_B) in id order: the given
        ids, or the campaign's items with lo <= id < hi. Stale features count as missing."""
        version = features.VERSION
        cols = f"{self.COLUMNS}, p.features_version, ra.features_version, rb.features_version"

        def current(rows):
            return _with_features([row if row[-3:] == (version,) * 3 else (row[0], None, None, None) for row in rows])

        if item_ids is not None:
            for start in range(0, len(item_ids), self.chunk):
                yield current(
                    bulk.execute_in(
                        f"SELECT {cols} {self.JOINS} WHERE i.id IN ({{0}}) ORDER BY i.id",
                        [item_ids[start : start + self.chunk]],
                    )
                )
            return
        last, end = lo - 1, hi if hi is not None else 2**62
        while True:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT {cols} {self.JOINS} WHERE i.campaign_id = %s AND i.excluded = %s AND i.id > %s "
                    "AND i.id < %s ORDER BY i.id LIMIT %s",
                    [self.campaign.id, False, last, end, self.chunk],
                )
                rows = cursor.fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield current(rows)

    @staticmethod
    def _vectors(rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(features.from_bytes([bytes(row[col]) for row in rows]) for col in (P_FEAT, A_FEAT, B_FEAT))

    # -- what people and automated labelers said, as pipeline targets ----------------------------

    def _target_key(self, side: int, row, j: int) -> tuple:
        """A choice target: a response (shared by every item showing it) or an item, and a criterion."""
        if side == pipeline.ITEM_SIDE:
            return ("item", row[ID], j)
        return ("response", row[RESP_A] if side == pipeline.A_SIDE else row[RESP_B], j)

    def _block(self, rows) -> pipeline.Block:
        """The pipeline's arrays for these item rows: vectors, tags, votes, final answers, labels."""
        layout, n = self.layout, len(rows)
        prompt, a, b = self._vectors(rows)
        index: dict[tuple, int] = {}
        target_criterion = []
        slot_target = np.full((n, layout.n_slots), -1, dtype=np.int64)
        for i, row in enumerate(rows):
            for s, (j, side) in enumerate(zip(layout.slot_criterion, layout.slot_side, strict=True)):
                key = self._target_key(int(side), row, int(j))
                if key not in index:
                    index[key] = len(index)
                    target_criterion.append(int(j))
                slot_target[i, s] = index[key]
        T = len(index)
        votes = np.zeros((T, layout.width))
        final = np.full(T, -1, dtype=np.int64)
        pair_votes = np.zeros((n, 2))
        slot_labels, pair_labels = [], []
        item_ids = [row[ID] for row in rows]
        response_ids = [row[c] for row in rows for c in (RESP_A, RESP_B)]
        per_response = [c.slug for c in layout.criteria if c.per_response]
        item_level = [c.slug for c in layout.criteria if not c.per_response]
        if per_response:
            for response_id, criterion, value in bulk.execute_in(
                "SELECT response_id, criterion, value FROM reviews_finalanswer "
                "WHERE response_id IN ({0}) AND criterion IN ({1})",
                [response_ids, per_response],
            ):
                self._final(final, index, ("response", response_id, self.choice[criterion]), criterion, value)
        if item_level:
            for item_id, criterion, value in bulk.execute_in(
                "SELECT item_id, criterion, value FROM reviews_finalanswer "
                "WHERE item_id IN ({0}) AND criterion IN ({1})",
                [item_ids, item_level],
            ):
                self._final(final, index, ("item", item_id, self.choice[criterion]), criterion, value)
        answers = []
        if per_response:
            answers += bulk.execute_in(
                "SELECT j.kind, j.annotator_id, a.response_id, NULL, a.criterion, a.value, a.confidence "
                "FROM reviews_answer a JOIN reviews_judgment j ON j.id = a.judgment_id "
                "WHERE a.response_id IN ({0}) AND a.criterion IN ({1})",
                [response_ids, per_response],
            )
        item_criteria = item_level + ([self.pairwise] if self.pairwise else [])
        if item_criteria:
            answers += bulk.execute_in(
                "SELECT j.kind, j.annotator_id, NULL, j.item_id, a.criterion, a.value, a.confidence "
                "FROM reviews_judgment j CROSS JOIN reviews_answer a WHERE a.judgment_id = j.id "
                "AND j.item_id IN ({0}) AND a.response_id IS NULL AND a.criterion IN ({1})",
                [item_ids, item_criteria],
            )
        row_of = {item_id: i for i, item_id in enumerate(item_ids)}
        for kind, annotator, response_id, item_id, criterion, value, confidence in answers:
            if criterion == self.pairwise:
                i = row_of[item_id]
                keys = (rows[i][KEY_A], rows[i][KEY_B])
                if kind == LabelKind.HUMAN:
                    if value == "tie":
                        pair_votes[i] += 0.5
                    elif value in keys:
                        pair_votes[i, keys.index(value)] += 1
                elif kind == LabelKind.MODEL and value in keys:
                    pair_labels.append((i, pipeline.PAIR, annotator, keys.index(value), confidence))
                continue
            j = self.choice[criterion]
            key = ("response", response_id, j) if response_id is not None else ("item", item_id, j)
            v = self.values[criterion].get(value)
            t = index.get(key)
            if t is None or v is None:
                continue
            if kind == LabelKind.HUMAN:
                votes[t, v] += 1
            elif kind == LabelKind.MODEL:
                slot_labels.append((t, j, annotator, v, confidence))
        return pipeline.Block(
            prompt=prompt,
            a=a,
            b=b,
            tags=[_tags(row[TAGS]) for row in rows],
            risk_prior=np.array([row[PRIOR] or 0.0 for row in rows], dtype=np.float64),
            pair_votes=pair_votes,
            target_criterion=np.array(target_criterion, dtype=np.int64),
            target_votes=votes,
            target_final=final,
            slot_target=slot_target,
            slot_labels=evidence.Labels.of(slot_labels),
            pair_labels=evidence.Labels.of(pair_labels),
            risk_mask=layout.risk_mask(n),
        )

    def _final(self, final: np.ndarray, index: dict, key: tuple, criterion: str, value: str) -> None:
        t, v = index.get(key), self.values[criterion].get(value)
        if t is not None and v is not None:
            final[t] = v

    # -- training ----------------------------------------------------------------------------

    def train(self) -> pipeline.Trained:
        """Fit the run's state: basis, automated labelers' confusions, risk, reward and tie models."""
        basis = self._basis()
        confusions, informative = self._confusions()
        risk_examples = self._risk_examples()
        outcomes = self._pair_outcomes()
        ids = sorted(set(risk_examples) | set(outcomes))
        rows = [row for chunk in self._item_rows(ids) for row in chunk]
        block = self._block(rows) if rows else None
        mode = self.settings_version.uncertainty_mode
        with self._computing():
            if block is None:
                feats = pipeline.featurize(basis, confusions, self.layout, self._empty_block())
                row_ids = []
            else:
                feats = pipeline.featurize(basis, confusions, self.layout, block)
                row_ids = [row[ID] for row in rows]
            position = {item_id: i for i, item_id in enumerate(row_ids)}
            risk_ids = [i for i in row_ids if i in risk_examples]
            pair_ids = [i for i in row_ids if i in outcomes]
            trained = pipeline.train(
                basis,
                confusions,
                self.layout,
                feats,
                np.array([position[i] for i in risk_ids], dtype=np.int64),
                np.array([risk_examples[i] for i in risk_ids], dtype=np.int64),
                np.array([position[i] for i in pair_ids], dtype=np.int64),
                np.array([outcomes[i] for i in pair_ids], dtype=np.float64),
                self.rng,
                uncertainty=mode,
                informative=informative,
            )
        self.beat()
        return trained

    def _empty_block(self) -> pipeline.Block:
        z = np.zeros((0, features.DIM), dtype=np.float32)
        e = evidence.Labels.empty()
        S, M = self.layout.n_slots, self.layout.width
        return pipeline.Block(
            z,
            z,
            z,
            [],
            np.zeros(0),
            np.zeros((0, 2)),
            np.zeros(0, dtype=np.int64),
            np.zeros((0, M)),
            np.zeros(0, dtype=np.int64),
            np.zeros((0, S), dtype=np.int64),
            e,
            e,
            np.zeros((0, S, M), dtype=bool),
        )

    def _basis(self) -> pipeline.Basis:
        """The text basis from a sample of the campaign's items (pipeline.BASIS_SAMPLE)."""
        ids = list(
            Item.objects.filter(campaign=self.campaign, excluded=False).order_by("id").values_list("id", flat=True)
        )
        if len(ids) > pipeline.BASIS_SAMPLE:
            ids = sorted(self.rng.choice(ids, pipeline.BASIS_SAMPLE, replace=False).tolist())
        texts, tags = [], []
        for rows in self._item_rows(ids):
            if rows:
                texts.extend(self._vectors(rows))
                tags.extend(_tags(row[TAGS]) for row in rows)
        with self._computing():
            stacked = np.vstack(texts) if texts else np.zeros((0, features.DIM), dtype=np.float32)
            return pipeline.fit_basis(stacked, tags, self.rng)

    def _confusions(self) -> tuple[evidence.Confusions, np.ndarray]:
        """Every automated label of the campaign against the final answers (evidence.fit), over all
        decided targets and a sample of at most EVIDENCE_SAMPLE undecided ones."""
        layout = self.layout
        per_response = [c.slug for c in layout.criteria if c.per_response]
        item_level = [c.slug for c in layout.criteria if not c.per_response]
        rows = []
        if per_response:
            rows += bulk.execute_in(
                "SELECT 'response', a.response_id, a.criterion, j.annotator_id, a.value, a.confidence, NULL, NULL "
                "FROM reviews_answer a JOIN reviews_judgment j ON j.id = a.judgment_id "
                "JOIN reviews_item i ON i.id = j.item_id "
                "WHERE i.campaign_id IN ({0}) AND j.kind = 'model' AND a.response_id IS NOT NULL "
                "AND a.criterion IN ({1})",
                [[self.campaign.id], per_response],
            )
        item_criteria = item_level + ([self.pairwise] if self.pairwise else [])
        if item_criteria:
            rows += bulk.execute_in(
                "SELECT 'item', j.item_id, a.criterion, j.annotator_id, a.value, a.confidence, ra.key, rb.key "
                "FROM reviews_answer a JOIN reviews_judgment j ON j.id = a.judgment_id "
                "JOIN reviews_item i ON i.id = j.item_id "
                "JOIN reviews_response ra ON ra.id = i.response_a_id "
                "JOIN reviews_response rb ON rb.id = i.response_b_id "
                "WHERE i.campaign_id IN ({0}) AND j.kind = 'model' AND a.response_id IS NULL AND a.criterion IN ({1})",
                [[self.campaign.id], item_criteria],
            )
        finals = {}
        for item_id, response_id, criterion, value in FinalAnswer.objects.filter(
            campaign=self.campaign, criterion__in=[*per_response, *item_criteria]
        ).values_list("item_id", "response_id", "criterion", "value"):
            finals[("response", response_id) if response_id is not None else ("item", item_id), criterion] = value
        index: dict[tuple, int] = {}
        target_criterion, target_truth, labels = [], [], []
        for kind, target, criterion, annotator, value, confidence, key_a, key_b in rows:
            if criterion == self.pairwise:
                j, options = pipeline.PAIR, {key_a: 0, key_b: 1}
            else:
                j, options = self.choice[criterion], self.values[criterion]
            v = options.get(value)
            if v is None:
                continue
            ident = (kind, target, criterion)
            if ident not in index:
                index[ident] = len(index)
                target_criterion.append(j)
                truth = options.get(finals.get(((kind, target), criterion)), -1)
                target_truth.append(truth)
            labels.append((index[ident], j, annotator, v, confidence))
        target_truth = np.array(target_truth, dtype=np.int64)
        label_arr = evidence.Labels.of(labels)
        undecided = np.flatnonzero(target_truth < 0)
        if len(undecided) > EVIDENCE_SAMPLE:
            dropped = self.rng.choice(undecided, len(undecided) - EVIDENCE_SAMPLE, replace=False)
            label_arr = label_arr.take(~np.isin(label_arr.target, dropped))
        # Decided targets without an automated label still shape the class priors.
        extra_crit, extra_truth = [], []
        labeled_targets = set(index)
        for ((kind, target), criterion), value in finals.items():
            if criterion in self.values and (kind, target, criterion) not in labeled_targets:
                v = self.values[criterion].get(value)
                if v is not None:
                    extra_crit.append(self.choice[criterion])
                    extra_truth.append(v)
        with self._computing():
            confusions = evidence.fit(
                layout.n_values,
                label_arr,
                np.array(target_criterion + extra_crit, dtype=np.int64),
                np.concatenate([target_truth, np.array(extra_truth, dtype=np.int64)]),
            )
        informative = np.isin(layout.slot_criterion, np.unique(label_arr.criterion))
        return confusions, informative

    def _pair_outcomes(self) -> dict[int, float]:
        """Item → 1.0 (A preferred), 0.0 (B) or 0.5 (tie) from the pairwise final answers."""
        if not self.pairwise:
            return {}
        out = {}
        for item_id, value, key_a, key_b in FinalAnswer.objects.filter(
            campaign=self.campaign, criterion=self.pairwise, item__isnull=False
        ).values_list("item_id", "value", "item__response_a__key", "item__response_b__key"):
            out[item_id] = 1.0 if value == key_a else 0.0 if value == key_b else 0.5 if value == "tie" else None
        return {k: v for k, v in out.items() if v is not None}

    def _risk_examples(self) -> dict[int, int]:
        """Risk labels: item → 1 if a final answer is a risk option (or a lead confirmed a harmful-content
        escalation), 0 once every criterion with risk options is decided for it without one."""
        criteria = [c for c in self.rubric.criteria if c.risk_values] if self.rubric else []
        finals = {c.slug: {} for c in criteria}
        for slug, item_id, response_id, value in FinalAnswer.objects.filter(
            campaign=self.campaign, criterion__in=list(finals)
        ).values_list("criterion", "item_id", "response_id", "value"):
            finals[slug][response_id if response_id is not None else ("item", item_id)] = value
        confirmed = set(
            Escalation.objects.filter(
                campaign=self.campaign, reason=Escalation.Reason.HARMFUL, status=Escalation.Status.RESOLVED
            ).values_list("item_id", flat=True)
        )
        examples: dict[int, int] = {item_id: 1 for item_id in confirmed}
        if not criteria:
            return examples
        for item_id, a, b in Item.objects.filter(campaign=self.campaign).values_list(
            "id", "response_a_id", "response_b_id"
        ):
            risky, decided = item_id in confirmed, True
            for c in criteria:
                for target in (a, b) if c.per_response else (("item", item_id),):
                    value = finals[c.slug].get(target)
                    risky = risky or value in c.risk_values
                    decided = decided and value is not None
            if risky:
                examples[item_id] = 1
            elif decided:
                examples[item_id] = 0
        return examples

    # -- scoring -------------------------------------------------------------------------------

    def score_items(self, trained: pipeline.Trained, lo: int = 0, hi: int | None = None) -> ScoreArrays:
        k = self.settings_version.overlap_k
        out = ScoreArrays()
        for rows in self._item_rows(lo=lo, hi=hi):
            if not rows:
                continue
            block = self._block(rows)
            with self._computing():
                feats = pipeline.featurize(trained.basis, trained.confusions, self.layout, block)
                scores = pipeline.score(trained, self.layout, block, feats)
            out.ids.extend(row[ID] for row in rows)
            out.risk.append(scores.r)
            out.uncertainty.append(scores.h)
            out.p.append(scores.p)
            out.q.append(scores.q)
            out.h_keep.append(scores.h_keep)
            out.embeddings.append(scores.embedding.astype(np.float16))
            for row in rows:
                # Unresolved, or re-queued (a judgment target set); not escalated or excluded; room left.
                target = row[TARGET] or k
                eligible = (
                    (not row[RESOLVED] or row[TARGET] is not None)
                    and not row[ESCALATED]
                    and not row[EXCLUDED]
                    and row[JUDGED] < target
                )
                out.eligible.append(eligible)
                # Diversity compares with items that are done; one still in progress is not its own reference.
                out.labeled.append(not eligible and (row[RESOLVED] or row[JUDGED] > 0))
                out.judgments.append(row[JUDGED])
            self.progress("score", len(out.ids), None)
            self.beat()
        return out

    def _select(self, arrays: ScoreArrays, weights: selection.Weights, trained: pipeline.Trained):
        budget = self._budget_left()
        fisher = None
        if trained.uncertainty == "fisher" and arrays.ids:
            fisher = selection.Fisher(
                arrays.stacked("p"), arrays.stacked("q"), arrays.stacked("h_keep"), self._whitener(arrays, trained)
            )
        with self._computing():
            return self._select_pure(arrays, weights, budget, fisher)

    def _whitener(self, arrays: ScoreArrays, trained: pipeline.Trained):
        """Fisher mode: the whitened pair features of the greedy candidates, read again by id."""
        ids = np.array(arrays.ids)

        def whiten(indices: np.ndarray) -> np.ndarray:
            wanted = ids[indices]
            rows = {row[ID]: row for chunk in self._item_rows(sorted(wanted.tolist())) for row in chunk}
            ordered = [rows[i] for i in wanted.tolist()]
            block = self._block(ordered)
            feats = pipeline.featurize(trained.basis, trained.confusions, self.layout, block)
            return trained.whiten(feats.pair_x)

        return whiten

    def _select_pure(
        self,
        arrays: ScoreArrays,
        weights: selection.Weights,
        budget: int | None,
        fisher: selection.Fisher | None = None,
    ):
        embeddings = arrays.stacked("embeddings").astype(np.float32)
        r, h = arrays.stacked("risk"), arrays.stacked("uncertainty")
        labeled = np.array(arrays.labeled, dtype=bool)
        judgments = np.array(arrays.judgments, dtype=float)
        k = self.settings_version.overlap_k
        eligible = np.array(arrays.eligible, dtype=bool)
        chosen = selection.choose(
            r,
            h,
            embeddings,
            labeled,
            eligible,
            budget,
            np.maximum(k - judgments, 0).astype(float),
            eligible & (judgments > 0),
            weights,
            self.settings_version.audit_share,
            self.rng,
            settings.SCORING_MAX_REPRESENTATIVES,
            fisher=fisher,
        )
        u = selection.utility(r, chosen.uncertainty, chosen.diversity, weights)
        return {"r": r, "h": chosen.uncertainty, "d": chosen.diversity, "u": u, "selection": chosen, "budget": budget}

    def _budget_left(self) -> int | None:
        """Judgments left in the total budget (None: no cap). The daily cap is enforced when serving."""
        s = self.settings_version
        if s.budget_total is None:
            return None
        spent = Judgment.objects.filter(item__campaign=self.campaign, kind=LabelKind.HUMAN, source="app").count()
        return max(0, s.budget_total - spent)

    def _write(self, arrays: ScoreArrays, result) -> None:
        sel = result["selection"]
        columns = [
            "run_id",
            "item_id",
            "risk",
            "uncertainty",
            "diversity",
            "utility",
            "selected",
            "audit",
            "selection_probability",
            "rank",
        ]
        n = len(arrays.ids)
        for start in range(0, n, self.chunk * 5):
            end = min(n, start + self.chunk * 5)
            rows = [
                (
                    self.run.id,
                    arrays.ids[i],
                    float(result["r"][i]),
                    float(result["h"][i]),
                    float(result["d"][i]),
                    float(result["u"][i]),
                    bool(sel.rank[i] >= 0),
                    bool(sel.audit[i]),
                    float(sel.probability[i]),
                    int(sel.rank[i]) if sel.rank[i] >= 0 else None,
                )
                for i in range(start, end)
            ]
            with transaction.atomic():
                bulk.insert_rows(ItemScore, columns, rows)
            self.progress("write", end, n)
            self.beat()

    def _describe(self, trained: pipeline.Trained) -> dict:
        """The trained models' record, automated labelers by name and criteria by slug."""
        sources = {s for _, s in trained.confusions.checked}
        names = dict(Annotator.objects.filter(pk__in=sources).values_list("pk", "name"))
        criteria = [self.pairwise or "pairwise", *(c.slug for c in self.layout.criteria)]
        return trained.describe(names, criteria)

    def _commit(self, count: int, trained: pipeline.Trained, result) -> None:
        sel = result["selection"]
        with transaction.atomic():
            current = Campaign.objects.select_for_update().get(pk=self.campaign.pk)
            status = ScoringRun.objects.select_for_update().get(pk=self.run.pk).status
            if status != Status.RUNNING:
                raise RunLost(f"run {self.run.id} was marked {status} before it finished; its scores are discarded")
            if current.scoring_run_id is not None and current.scoring_run_id > self.run.id:
                raise RunLost(f"run {current.scoring_run_id}, newer than run {self.run.id}, is already in force")
            Campaign.objects.filter(pk=self.campaign.pk).update(scoring_run=self.run)
            ScoringRun.objects.filter(pk=self.run.pk).update(
                status=Status.SUCCEEDED,
                phase="done",
                finished_at=timezone.now(),
                item_count=count,
                timings=self.timings,
                model_versions={"features": features.VERSION, "seed": self.run.id, **self._describe(trained)},
                metrics={
                    "risk_held_out_accuracy": trained.risk.held_out_accuracy,
                    "reward_held_out_accuracy": trained.reward.held_out_accuracy,
                    "selected": int(sel.selected.sum()),
                    "audit": int(sel.audit.sum()),
                    "budget_left": result["budget"],
                    "utility_mean": float(result["u"].mean()) if count else None,
                    "compute_seconds": round(self.compute_seconds, 3),
                },
            )
        self._prune_old_scores()

    def _prune_old_scores(self) -> None:
        keep = settings.SCORING_KEEP_RUNS
        old = list(
            ScoringRun.objects.filter(campaign=self.campaign, status=Status.SUCCEEDED)
            .order_by("-id")
            .values_list("id", flat=True)[keep:]
        )
        failed = list(
            ScoringRun.objects.filter(campaign=self.campaign, status=Status.FAILED).values_list("id", flat=True)
        )
        for run_id in old + failed:
            if run_id != self.run.id:
                ItemScore.objects.filter(run_id=run_id).delete()
