"""Ingest through the API: a JSON list or JSON Lines body in the pool import format, all or nothing.

The pool importer does the validation and the writing; this module turns a request body into
its input and its report into per-item results.
"""

import io
import re
from dataclasses import dataclass, field

import orjson
from django.db import transaction

from reviews.core import sql
from reviews.core.exceptions import DomainError, ImportFailed
from reviews.data.importer import import_pool
from reviews.data.pool_format import canonical_json, sha256_hex
from reviews.models import Campaign, FeedbackEvent

JSON_TYPES = frozenset({"application/json"})
JSONL_TYPES = frozenset(
    {"application/jsonl", "application/x-ndjson", "application/x-jsonlines", "application/jsonlines", "text/jsonl"}
)
LINE_PREFIX = re.compile(r"^line (\d+): ")


class BodyError(DomainError):
    """The body as a whole cannot be read as items (not per-item problems)."""

    def __init__(self, message: str, status: int = 400):
        self.status = status
        super().__init__(message)


@dataclass
class IngestResult:
    ok: bool
    counts: dict
    items: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def payload(self, campaign) -> dict:
        return {
            "campaign": campaign.slug,
            "status": "imported" if self.ok else "rejected",
            "counts": self.counts,
            "errors": self.errors,
            "items": self.items,
        }


def body_to_jsonl(body: bytes, media_type: str) -> bytes:
    """The body as JSON Lines: a JSON list becomes one line per element (line N = element N)."""
    if media_type in JSONL_TYPES:
        return body
    if media_type not in JSON_TYPES:
        accepted = ", ".join(sorted(JSON_TYPES | JSONL_TYPES))
        raise BodyError(f"Content-Type {media_type or '(none)'!r} is not supported; send one of {accepted}.", 415)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"the body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from exc
    if not isinstance(data, list):
        raise BodyError(f"a JSON body must be a list of items, got {type(data).__name__}")
    return b"".join(orjson.dumps(element) + b"\n" for element in data)


def _scan(lines: bytes) -> list[tuple[int, str | None, str | None]]:
    """(line number, external_id, content hash) of every non-blank line that reads as an object."""
    out = []
    for number, raw in enumerate(lines.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            out.append((number, None, None))
            continue
        ext = obj.get("external_id") if isinstance(obj, dict) else None
        out.append((number, ext if isinstance(ext, str) else None, sha256_hex(canonical_json(obj))))
    return out


def _known_hashes(campaign, external_ids) -> dict[str, str]:
    ids = sorted(set(external_ids))
    known: dict[str, str] = {}
    # Bounded IN lists: SQLite accepts at most 32,766 parameters in one statement.
    for start in range(0, len(ids), 5000):
        known.update(
            sql.execute_in(
                "SELECT external_id, content_hash FROM reviews_item WHERE campaign_id IN ({0}) "
                "AND external_id IN ({1})",
                [[campaign.id], ids[start : start + 5000]],
            )
        )
    return known


def ingest(campaign, body: bytes, media_type: str, *, token) -> IngestResult:
    """Import the body's items into the campaign; nothing is written unless every item is valid."""
    lines = body_to_jsonl(body, media_type)
    scanned = _scan(lines)
    source = f"api:{token.name}"
    try:
        with transaction.atomic():
            # The importer's campaign lock, taken first: what is already there cannot change until we commit.
            Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
            known = _known_hashes(campaign, [ext for _, ext, _ in scanned if ext])
            report = import_pool(campaign, io.BytesIO(lines), source_name=source)
            FeedbackEvent.record(
                campaign,
                FeedbackEvent.Action.INGESTED,
                {"token": token.name, "token_id": token.pk, **report.counts()},
                scoring_run=None,
            )
    except ImportFailed as exc:
        return _rejected(exc.report, scanned)
    items = []
    for number, ext, digest in scanned:
        status = "skipped" if known.get(ext) == digest else "created"
        known.setdefault(ext, digest)
        items.append({"line": number, "external_id": ext, "status": status})
    return IngestResult(True, report.counts(), items)


def _rejected(report, scanned) -> IngestResult:
    by_line: dict[int, list[str]] = {}
    general = []
    for message in report.errors:
        match = LINE_PREFIX.match(message)
        if match:
            by_line.setdefault(int(match.group(1)), []).append(message[match.end() :])
        else:
            general.append(message)
    if report.error_count > len(report.errors):
        general.append(f"{report.error_count - len(report.errors)} more error(s) not listed")
    items = []
    for number, ext, _ in scanned:
        errors = by_line.get(number)
        entry = {"line": number, "external_id": ext, "status": "error" if errors else "not_written"}
        if errors:
            entry["errors"] = errors
        items.append(entry)
    return IngestResult(False, report.counts(), items, general)
