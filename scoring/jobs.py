"""Rescoring jobs: load rows by id, call the pure scoring functions, save in bulk.

A run writes its ItemScore rows chunk by chunk, then switches `Campaign.scoring_run` to
itself in one transaction: until that commit the previous run's scores stay in force, so a
worker killed mid-run changes nothing that labelers see.
"""

import io
import logging
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import django_rq
import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from redis.exceptions import RedisError
from rq.exceptions import DuplicateJobError
from rq.job import JobStatus

from reviews import bulk, escalation
from reviews.models import (
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
from scoring import diversity, features, models, selection

log = logging.getLogger(__name__)
Status = ScoringRun.Status


# -- requesting runs -----------------------------------------------------------------------


@dataclass
class RescoreRequest:
    run: ScoringRun
    # "queued": a new run is on the queue; "coalesced": an existing queued run will cover it;
    # "unavailable": the run is recorded but the queue could not be reached (the schedule retries).
    outcome: str
    message: str = ""


def fail_lost_runs(campaign: Campaign | None = None) -> int:
    """Mark running runs whose heartbeat stopped (their worker died) as failed."""
    stale = timezone.now() - timedelta(seconds=settings.SCORING_STALE_SECONDS)
    runs = ScoringRun.objects.filter(status=Status.RUNNING, heartbeat_at__lt=stale)
    if campaign is not None:
        runs = runs.filter(campaign=campaign)
    return runs.update(
        status=Status.FAILED, finished_at=timezone.now(), error="worker lost: no heartbeat since the last chunk"
    )


def request_rescore(campaign: Campaign, trigger: str) -> RescoreRequest:
    """Queue a rescoring run, unless one is already queued (then that one covers this request)."""
    fail_lost_runs(campaign)
    with transaction.atomic():
        _lock(campaign)  # serialize requests per campaign
        queued = _queued_run(campaign)
        if queued is not None:
            return RescoreRequest(queued, "coalesced", "a rescoring run is already queued")
        run = ScoringRun.objects.create(campaign=campaign, trigger=trigger, judgment_mark=_judgment_mark())
    return _enqueue(run)


def _judgment_mark() -> int:
    return Judgment.objects.aggregate(mark=Max("id"))["mark"] or 0


def _lock(campaign: Campaign) -> None:
    """Take the campaign's row lock: run requests, claims and commits of one campaign go one at a time."""
    Campaign.objects.select_for_update().filter(pk=campaign.pk).first()


def _queued_run(campaign: Campaign) -> ScoringRun | None:
    return campaign.scoring_runs.filter(status=Status.QUEUED).order_by("id").first()


def _enqueue(run: ScoringRun) -> RescoreRequest:
    """Put the run's job on the queue once the run row is committed (a worker must find it)."""
    if connection.in_atomic_block:
        transaction.on_commit(lambda: _send(run))
        return RescoreRequest(run, "queued", "rescoring queued")
    return _send(run)


def _send(run: ScoringRun) -> RescoreRequest:
    job_id = f"rescore-{run.id}"
    try:
        queue = django_rq.get_queue("default")
        # A run that was sent while another was running got "not started" and its job finished;
        # that finished job must not block sending the run again (job ids are unique).
        done = queue.fetch_job(job_id)
        if done is not None and done.get_status(refresh=False) in ENDED_JOB_STATES:
            done.delete()
        queue.enqueue(run_rescore, run.id, job_id=job_id, job_timeout=settings.SCORING_JOB_TIMEOUT, unique=True)
    except DuplicateJobError:
        return RescoreRequest(run, "coalesced", "the run is already on the queue")
    except RedisError as exc:
        log.warning("rescoring run %s recorded but not queued: %s", run.id, exc)
        return RescoreRequest(run, "unavailable", "the job queue is unreachable; the run will start when it is back")
    return RescoreRequest(run, "queued", "rescoring queued")


ENDED_JOB_STATES = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)


def maybe_rescore_after_judgments(campaign: Campaign) -> RescoreRequest | None:
    """The N-judgments trigger: rescore once `rescore_every` human judgments arrived since the last run.

    Called after every submit, so it counts at most N rows past the last run's judgment mark.
    """
    every = campaign.settings.rescore_every
    if not every:
        return None
    last = campaign.scoring_runs.order_by("-id").first()
    if last is not None and last.status == Status.QUEUED:
        return None  # the queued run will see these judgments; no need to lock anything
    mark = last.judgment_mark if last is not None else 0
    recent = Judgment.objects.filter(pk__gt=mark, item__campaign=campaign, kind=LabelKind.HUMAN)
    if recent[:every].count() >= every:
        return request_rescore(campaign, f"{every} judgments")
    return None


def rescore_due() -> list[str]:
    """The scheduled job: recover lost runs, re-queue stranded ones, rescore campaigns that changed."""
    fail_lost_runs()
    done = []
    for campaign in Campaign.objects.all():
        queued = _queued_run(campaign)
        if queued is not None:
            if queued.requested_at < timezone.now() - timedelta(minutes=1):
                _enqueue(queued)  # unique job id: refused if it is still on the queue
            continue
        last = campaign.scoring_runs.filter(status=Status.SUCCEEDED).order_by("-requested_at").first()
        changed = (
            last is None
            or last.settings_version_id != campaign.settings.id  # new λ weights or budget
            or Item.objects.filter(campaign=campaign, created_at__gt=last.requested_at).exists()
            or Judgment.objects.filter(item__campaign=campaign, created_at__gt=last.requested_at).exists()
        )
        if changed and Item.objects.filter(campaign=campaign).exists():
            done.append(f"{campaign.slug}: {request_rescore(campaign, 'schedule').outcome}")
    return done


# -- running --------------------------------------------------------------------------------


class RunLost(Exception):
    """The run was marked failed (its heartbeat went stale) or overtaken before it could commit."""


def _claim(campaign: Campaign, *, run_id: int | None = None, trigger: str = "") -> ScoringRun | None:
    """Start a run unless one of this campaign is running: the queued run `run_id`, or a new one."""
    fail_lost_runs(campaign)
    now = timezone.now()
    with transaction.atomic():
        _lock(campaign)
        if campaign.scoring_runs.filter(status=Status.RUNNING).exists():
            return None
        if run_id is None:
            return ScoringRun.objects.create(
                campaign=campaign,
                trigger=trigger,
                status=Status.RUNNING,
                started_at=now,
                heartbeat_at=now,
                judgment_mark=_judgment_mark(),
            )
        claimed = ScoringRun.objects.filter(pk=run_id, status=Status.QUEUED).update(
            status=Status.RUNNING, started_at=now, heartbeat_at=now, phase="starting"
        )
    return ScoringRun.objects.get(pk=run_id) if claimed else None


def _execute(run: ScoringRun, progress=None) -> ScoringRun:
    """Run it; a failure is recorded on the run (and raised); then start the next queued run, if any."""
    try:
        Rescorer(run, progress=progress).execute()
    except Exception as exc:
        ScoringRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(
            status=Status.FAILED, finished_at=timezone.now(), error=f"{type(exc).__name__}: {exc}"
        )
        raise
    finally:
        following = _queued_run(run.campaign)
        if following is not None:
            _enqueue(following)
    run.refresh_from_db()
    return run


def run_rescore(run_id: int) -> str:
    """The RQ job: claim a queued run and execute it."""
    run = ScoringRun.objects.select_related("campaign").get(pk=run_id)
    claimed = _claim(run.campaign, run_id=run_id)
    if claimed is None:
        return f"run {run_id} not started: it is not queued, or another run of {run.campaign.slug} is running"
    if Item.objects.filter(campaign=run.campaign, excluded=False).count() >= settings.SCORING_SPLIT_MIN_ITEMS:
        from scoring import chunked

        return chunked.start(claimed)
    _execute(claimed)
    return f"run {run_id} succeeded"


def rescore_in_foreground(campaign: Campaign, trigger: str, progress=None) -> ScoringRun:
    """The same run in this process (the `rescore` command, benchmarks, tests)."""
    run = _claim(campaign, trigger=trigger)
    if run is None:
        raise RunBusy(f"a rescoring run of {campaign.slug} is already running")
    return _execute(run, progress)


class RunBusy(Exception):
    """Another run of the campaign is running."""


def _with_features(rows: list) -> list:
    """Rows whose texts all have features: items that arrived after the features phase wait for
    the next run. (Filtered here, not in SQL: `features IS NOT NULL` led PostgreSQL to scan.)"""
    return [row for row in rows if row[1] is not None and row[2] is not None and row[3] is not None]


@dataclass
class _Arrays:
    """Per-item values of one run, gathered chunk by chunk."""

    ids: list = field(default_factory=list)
    risk_prior: list = field(default_factory=list)
    reward_prior: list = field(default_factory=list)
    n_a: list = field(default_factory=list)
    n_b: list = field(default_factory=list)
    model_risk: list = field(default_factory=list)
    eligible: list = field(default_factory=list)
    labeled: list = field(default_factory=list)
    judgments: list = field(default_factory=list)
    embeddings: list = field(default_factory=list)

    FLAT = ("ids", "risk_prior", "n_a", "n_b", "eligible", "labeled", "judgments")
    STACKED = ("reward_prior", "model_risk", "embeddings")

    def to_bytes(self) -> bytes:
        """One chunk's values as an .npz blob (a chunk job hands them to the finishing job)."""
        buffer = io.BytesIO()
        arrays = {name: np.asarray(getattr(self, name)) for name in self.FLAT}
        for name in self.STACKED:
            parts = getattr(self, name)
            empty = np.zeros((0, features.DIM) if name == "embeddings" else 0)
            arrays[name] = np.concatenate(parts) if parts else empty
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def join(cls, blobs) -> "_Arrays":
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
        pairwise = [c for c in self.rubric.criteria if c.kind == "pairwise"] if self.rubric else []
        self.pairwise = pairwise[0].slug if pairwise else None

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
        self._phase("features", self._compute_missing_features)
        risk_model, reward_model = self._phase("train", self._train)
        arrays = self._phase("score", lambda: self._score_items(risk_model, reward_model))
        self.finish(arrays, risk_model, reward_model)

    def finish(self, arrays: "_Arrays", risk_model, reward_model) -> None:
        """Select the active set over every item's scores, write them, and commit the run."""
        result = self._phase("select", lambda: self._select(arrays, self.weights))
        self._phase("write", lambda: self._write(arrays, result))
        self._commit(len(arrays.ids), risk_model, reward_model, result)
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
    def _phase(self, name: str, fn):
        self._beat(name)
        started = time.perf_counter()
        value = fn()
        self.timings[name] = round(time.perf_counter() - started, 3)
        return value

    def _beat(self, phase: str | None = None) -> None:
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

    def _compute_missing_features(self, only: str | None = None, lo: int = 0, hi: int | None = None) -> None:
        """Hash the texts that have no (current) features; `only`, `lo` and `hi` narrow it to one
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
                self._beat()

    def _item_rows(self, item_ids=None, lo: int = 0, hi: int | None = None):
        """Yield chunks of (id, prompt, a, b feature vectors, risk_prior, flags, keys) in id order
        (the given ids, or the campaign's items with lo <= id < hi)."""
        last, end = lo - 1, hi if hi is not None else 2**62
        cols = (
            "i.id, p.features, ra.features, rb.features, i.risk_prior, i.resolved, i.escalated, i.excluded, "
            "i.human_judgments, ra.key, rb.key, i.judgment_target"
        )
        joins = (
            "FROM reviews_item i JOIN reviews_prompt p ON p.id = i.prompt_id "
            "JOIN reviews_response ra ON ra.id = i.response_a_id JOIN reviews_response rb ON rb.id = i.response_b_id"
        )
        if item_ids is not None:
            for start in range(0, len(item_ids), self.chunk):
                yield _with_features(
                    bulk.execute_in(
                        f"SELECT {cols} {joins} WHERE i.id IN ({{0}}) ORDER BY i.id",
                        [item_ids[start : start + self.chunk]],
                    )
                )
            return
        while True:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT {cols} {joins} WHERE i.campaign_id = %s AND i.excluded = %s AND i.id > %s "
                    "AND i.id < %s ORDER BY i.id LIMIT %s",
                    [self.campaign.id, False, last, end, self.chunk],
                )
                rows = cursor.fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield _with_features(rows)

    @staticmethod
    def _vectors(rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(features.from_bytes([bytes(row[col]) for row in rows]) for col in (1, 2, 3))

    def _train(self) -> tuple[models.Linear, models.Linear]:
        examples = self._risk_examples()
        X, y = [], []
        for rows in self._item_rows(sorted(examples)):
            prompt, a, b = self._vectors(rows)
            X.append(features.risk_features(prompt, a, b))
            y.extend(examples[row[0]] for row in rows)
        with self._computing():
            risk_model = models.train_risk(
                np.vstack(X) if X else np.zeros((0, 3 * features.DIM)), np.array(y, dtype=int), self.rng
            )
        decided = {}
        if self.pairwise:
            decided = dict(
                FinalAnswer.objects.filter(campaign=self.campaign, criterion=self.pairwise, item__isnull=False)
                .exclude(value="tie")
                .values_list("item_id", "value")
            )
        diffs, wins = [], []
        for rows in self._item_rows(sorted(decided)):
            _, a, b = self._vectors(rows)
            diffs.append(features.pair_difference(a, b))
            wins.extend(int(decided[row[0]] == row[9]) for row in rows)
        with self._computing():
            reward_model = models.train_bradley_terry(
                np.vstack(diffs) if diffs else np.zeros((0, features.DIM)), np.array(wins, dtype=int), self.rng
            )
        self._beat()
        return risk_model, reward_model

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

    def _votes(self, item_ids) -> dict[int, dict[str, int]]:
        if not self.pairwise:
            return {}
        votes: dict[int, dict[str, int]] = defaultdict(dict)
        for item_id, value, n in bulk.execute_in(
            "SELECT j.item_id, a.value, COUNT(*) FROM reviews_judgment j CROSS JOIN reviews_answer a "
            "WHERE a.judgment_id = j.id AND j.item_id IN ({0}) AND j.kind = 'human' AND a.criterion IN ({1}) "
            "AND a.response_id IS NULL GROUP BY j.item_id, a.value",
            [item_ids, [self.pairwise]],
        ):
            votes[item_id][value] = n
        return votes

    def _score_items(
        self, risk_model: models.Linear, reward_model: models.Linear, lo: int = 0, hi: int | None = None
    ) -> _Arrays:
        k = self.settings_version.overlap_k
        out = _Arrays()
        for rows in self._item_rows(lo=lo, hi=hi):
            prompt, a, b = self._vectors(rows)
            ids = [row[0] for row in rows]
            out.ids.extend(ids)
            out.risk_prior.extend(row[4] or 0.0 for row in rows)
            with self._computing():
                out.model_risk.append(
                    risk_model.predict(features.risk_features(prompt, a, b))
                    if risk_model.trained
                    else np.zeros(len(rows))
                )
                out.reward_prior.append(
                    reward_model.predict(features.pair_difference(a, b))
                    if reward_model.trained
                    else np.full(len(rows), 0.5)
                )
                out.embeddings.append(features.item_embedding(prompt, a, b).astype(np.float16))
            votes = self._votes(ids)
            for row in rows:
                v = votes.get(row[0], {})
                tie = v.get("tie", 0) / 2
                out.n_a.append(v.get(row[9], 0) + tie)
                out.n_b.append(v.get(row[10], 0) + tie)
                # Unresolved, or re-queued (a judgment target set); not escalated or excluded; room left.
                target = row[11] or k
                eligible = (not row[5] or row[11] is not None) and not row[6] and not row[7] and row[8] < target
                out.eligible.append(eligible)
                # Diversity compares with items that are done; one still in progress is not its own reference.
                out.labeled.append(not eligible and (row[5] or row[8] > 0))
                out.judgments.append(row[8])
            self.progress("score", len(out.ids), None)
            self._beat()
        return out

    def _select(self, arrays: _Arrays, weights: selection.Weights):
        budget = self._budget_left()
        with self._computing():
            return self._select_pure(arrays, weights, budget)

    def _select_pure(self, arrays: _Arrays, weights: selection.Weights, budget: int | None):
        n = len(arrays.ids)
        embeddings = np.vstack(arrays.embeddings).astype(np.float32) if n else np.zeros((0, features.DIM))
        prior = np.array(arrays.risk_prior, dtype=np.float64)
        model_risk = np.concatenate(arrays.model_risk) if n else np.zeros(0)
        r = models.noisy_or(prior, model_risk)
        p = np.concatenate(arrays.reward_prior) if n else np.zeros(0)
        h = models.posterior_uncertainty(np.array(arrays.n_a, dtype=float), np.array(arrays.n_b, dtype=float), p)
        labeled = np.array(arrays.labeled, dtype=bool)
        judgments = np.array(arrays.judgments, dtype=float)
        k = self.settings_version.overlap_k
        refs = diversity.representatives(embeddings[labeled], settings.SCORING_MAX_REPRESENTATIVES, self.rng)
        d = diversity.min_cosine_distance(embeddings, refs)
        chosen = selection.select_active(
            r,
            h,
            d,
            embeddings,
            np.array(arrays.eligible, dtype=bool),
            budget,
            np.maximum(k - judgments, 0).astype(float),
            np.array(arrays.eligible, dtype=bool) & (judgments > 0),
            weights,
            self.settings_version.audit_share,
            self.rng,
        )
        u = selection.utility(r, h, chosen.diversity, weights)
        return {"r": r, "h": h, "d": chosen.diversity, "u": u, "selection": chosen, "budget": budget}

    def _budget_left(self) -> int | None:
        """Judgments left in the total budget (None: no cap). The daily cap is enforced when serving."""
        s = self.settings_version
        if s.budget_total is None:
            return None
        spent = Judgment.objects.filter(item__campaign=self.campaign, kind=LabelKind.HUMAN, source="app").count()
        return max(0, s.budget_total - spent)

    def _write(self, arrays: _Arrays, result) -> None:
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
            self._beat()

    def _commit(self, count: int, risk_model, reward_model, result) -> None:
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
                model_versions={
                    "features": features.VERSION,
                    "seed": self.run.id,
                    "risk": risk_model.describe(),
                    "reward": reward_model.describe(),
                },
                metrics={
                    "risk_held_out_accuracy": risk_model.held_out_accuracy,
                    "reward_held_out_accuracy": reward_model.held_out_accuracy,
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
