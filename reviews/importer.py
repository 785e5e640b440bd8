"""Pool import (FORMATS.md section 1): streamed, validated line by line, all or nothing."""

import json
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from reviews import final_answers
from reviews.exceptions import ImportFailed
from reviews.models import (
    Adjudication,
    Annotator,
    Answer,
    FeedbackEvent,
    Item,
    Judgment,
    LabelKind,
    Prompt,
    Response,
    Source,
)
from reviews.pool_format import LineError, LineIn, parse_line

MAX_REPORTED_ERRORS = 200


@dataclass
class ImportReport:
    lines: int = 0
    created: int = 0
    skipped: int = 0
    conflicts: int = 0
    labels: int = 0
    error_count: int = 0
    errors: list[str] = field(default_factory=list)

    def add_error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(message)

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
        self.rubric_version = campaign.rubric_version()
        self.rubric = self.rubric_version.parsed if self.rubric_version else None
        self.settings_version = campaign.settings
        self.batch_size = django_settings.REVIEWS_IMPORT_BATCH_SIZE
        self.max_line_bytes = django_settings.REVIEWS_IMPORT_MAX_LINE_BYTES
        self._annotators: dict[str, int] = {}

    def run(self, stream) -> ImportReport:
        """Import a binary stream of JSON Lines; raise ImportFailed (nothing written) on any error."""
        try:
            with transaction.atomic():
                batch: list[tuple[int, LineIn]] = []
                for number, raw in read_lines(stream, self.max_line_bytes):
                    if self.progress:
                        self.progress(number, 0 if raw is None else len(raw))
                    parsed = self._parse(number, raw)
                    if parsed is not None:
                        batch.append((number, parsed))
                    if len(batch) >= self.batch_size:
                        self._write(batch)
                        batch = []
                if batch:
                    self._write(batch)
                if self.report.lines == 0 and self.report.error_count == 0:
                    self.report.add_error("the file is empty: no items to import")
                if not self.report.ok:
                    raise ImportFailed(self.report)
        except ImportFailed:
            self.report.created = 0
            self.report.labels = 0
            raise
        return self.report

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
            self.report.add_error(f"line {number}: not valid UTF-8 (byte {exc.start}: {exc.reason})")
            return None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
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
        campaign = self.campaign
        existing_items = dict(
            Item.objects.filter(campaign=campaign, external_id__in={line.external_id for _, line in batch}).values_list(
                "external_id", "content_hash"
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
        if not fresh:
            return

        prompts = {
            p.external_id: p
            for p in Prompt.objects.filter(
                campaign=campaign, external_id__in={line.prompt_id for _, line in fresh}
            ).only("id", "external_id", "content_hash")
        }
        new_prompts = []
        for number, line in fresh:
            prompt = prompts.get(line.prompt_id)
            if prompt is None:
                prompt = Prompt(
                    campaign=campaign,
                    external_id=line.prompt_id,
                    content=line.prompt,
                    text=line.prompt_text,
                    content_hash=line.prompt_hash,
                )
                prompts[line.prompt_id] = prompt
                new_prompts.append(prompt)
            elif prompt.content_hash != line.prompt_hash:
                self._conflict(number, f"prompt_id {line.prompt_id!r} already has a different prompt")
        Prompt.objects.bulk_create(new_prompts)

        prompt_ids = {prompts[line.prompt_id].id for _, line in fresh}
        responses = {
            (r.prompt_id, r.key): r
            for r in Response.objects.filter(prompt_id__in=prompt_ids).only("id", "prompt_id", "key", "model", "text")
        }
        new_responses = []
        for number, line in fresh:
            prompt_pk = prompts[line.prompt_id].id
            for resp in line.responses:
                stored = responses.get((prompt_pk, resp.key))
                if stored is None:
                    stored = Response(prompt_id=prompt_pk, key=resp.key, model=resp.model, text=resp.text)
                    responses[(prompt_pk, resp.key)] = stored
                    new_responses.append(stored)
                elif stored.model != resp.model or stored.text != resp.text:
                    self._conflict(
                        number,
                        f"response {resp.key!r} of prompt {line.prompt_id!r} is already imported with a different "
                        "model or text",
                    )
        Response.objects.bulk_create(new_responses)

        now = timezone.now()
        items = []
        for _, line in fresh:
            prompt_pk = prompts[line.prompt_id].id
            a, b = (responses[(prompt_pk, r.key)] for r in line.responses)
            items.append(
                Item(
                    campaign=campaign,
                    external_id=line.external_id,
                    prompt_id=prompt_pk,
                    response_a=a,
                    response_b=b,
                    risk_prior=line.risk_prior,
                    tags=line.tags,
                    metadata=line.metadata,
                    content_hash=line.content_hash,
                    created_at=now,
                )
            )
        Item.objects.bulk_create(items)
        self.report.created += len(items)
        labeled = self._write_labels(fresh, items, responses, prompts, now)
        if labeled:
            final_answers.refresh(campaign, labeled)

    def _annotator(self, name: str) -> int:
        pk = self._annotators.get(name)
        if pk is None:
            pk = Annotator.objects.get_or_create(name=name, user=None)[0].pk
            self._annotators[name] = pk
        return pk

    def _write_labels(self, fresh, items, responses, prompts, now) -> list[int]:
        """Store the lines' labels as judgments, adjudications and answers; return the labeled items."""
        judgments, adjudications, pending_answers, events = [], [], [], []
        for (_, line), item in zip(fresh, items, strict=True):
            if not line.labels:
                continue
            prompt_pk = prompts[line.prompt_id].id
            groups: dict[tuple[str, str], list] = defaultdict(list)
            for label in line.labels:
                groups[(label.annotator, label.kind)].append(label)
            for (name, kind), labels in groups.items():
                created = min((lb.created_at for lb in labels if lb.created_at), default=now)
                rationale = "\n\n".join(dict.fromkeys(lb.rationale for lb in labels if lb.rationale))
                if kind == "lead":
                    parent = Adjudication(
                        item=item,
                        lead_id=self._annotator(name),
                        source=Source.IMPORT,
                        rationale=rationale,
                        rubric_version=self.rubric_version,
                        settings_version=self.settings_version,
                        created_at=created,
                    )
                    adjudications.append(parent)
                else:
                    confidences = [lb.confidence for lb in labels if lb.confidence is not None]
                    parent = Judgment(
                        item=item,
                        annotator_id=self._annotator(name),
                        kind=LabelKind.HUMAN if kind == "human" else LabelKind.MODEL,
                        source=Source.IMPORT,
                        confidence=sum(confidences) / len(confidences) if confidences else None,
                        rationale=rationale,
                        rubric_version=self.rubric_version,
                        settings_version=self.settings_version,
                        created_at=created,
                    )
                    judgments.append(parent)
                for label in labels:
                    response = responses[(prompt_pk, label.response)] if label.response else None
                    pending_answers.append((parent, kind == "lead", label, response))
            self.report.labels += len(line.labels)
            events.append(
                FeedbackEvent(
                    campaign=self.campaign,
                    item=item,
                    actor=self.actor,
                    action=FeedbackEvent.Action.IMPORTED,
                    feedback={"labels": len(line.labels), "source": self.source_name},
                    rubric_version=self.rubric_version,
                    settings_version=self.settings_version,
                    created_at=now,
                )
            )
        Judgment.objects.bulk_create(judgments)
        Adjudication.objects.bulk_create(adjudications)
        Answer.objects.bulk_create(
            Answer(
                judgment=None if is_lead else parent,
                adjudication=parent if is_lead else None,
                criterion=label.criterion,
                response=response,
                value=label.value,
                confidence=label.confidence,
            )
            for parent, is_lead, label, response in pending_answers
        )
        FeedbackEvent.objects.bulk_create(events)
        return [item.id for (_, line), item in zip(fresh, items, strict=True) if line.labels]


def import_pool(campaign, stream, **kwargs) -> ImportReport:
    """Import a pool file (binary stream) into a campaign; see PoolImporter."""
    return PoolImporter(campaign, **kwargs).run(stream)
