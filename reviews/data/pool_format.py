"""Validation of one pool-import line (FORMATS.md section 1): pure, no database access."""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from reviews.rubrics.definition import TIE, RubricDefinition
from scoring.poolfile import canonical_json, prompt_text, sha256_hex

TOP_LEVEL_KEYS = {
    "external_id",
    "prompt_id",
    "prompt",
    "responses",
    "risk_prior",
    "tags",
    "metadata",
    "labels",
    "gold",
}
GOLD_KEYS = {"criterion", "response", "value"}
LABEL_KEYS = {"annotator", "kind", "criterion", "response", "value", "confidence", "rationale", "created_at"}
CHAT_ROLES = ("system", "user", "assistant")
LABEL_KINDS = ("human", "lead", "model")
MAX_ID_LENGTH = 255


class LineError(Exception):
    """One or more problems with a line; each message names the field."""

    def __init__(self, messages: list[str]):
        self.messages = messages
        super().__init__("; ".join(messages))


@dataclass(frozen=True)
class ResponseIn:
    key: str
    model: str
    text: str


@dataclass(frozen=True)
class LabelIn:
    annotator: str
    kind: str
    criterion: str
    response: str | None
    value: str
    confidence: float | None
    rationale: str
    created_at: datetime | None


@dataclass
class LineIn:
    """A validated import line, ready to be stored."""

    external_id: str
    prompt_id: str
    prompt: str | list
    prompt_text: str
    prompt_hash: str
    responses: tuple[ResponseIn, ResponseIn]
    risk_prior: float | None
    tags: list
    metadata: dict
    labels: list[LabelIn] = field(default_factory=list)
    content_hash: str = ""
    # Known answers of a gold item ({"criterion", "response"?, "value"} each); None: not gold.
    gold: list[dict] | None = None


def _nonempty_str(value) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _check_prompt(prompt, errors: list[str]):
    if isinstance(prompt, str):
        if not prompt.strip():
            errors.append("prompt: must not be empty")
        return
    if isinstance(prompt, list):
        if not prompt:
            errors.append("prompt: a chat transcript must have at least one turn")
        for i, turn in enumerate(prompt):
            if not isinstance(turn, dict) or set(turn) != {"role", "content"}:
                errors.append(f'prompt[{i}]: expected {{"role", "content"}}')
            elif turn["role"] not in CHAT_ROLES:
                errors.append(f"prompt[{i}].role: expected one of {', '.join(CHAT_ROLES)}, got {turn['role']!r}")
            elif not isinstance(turn["content"], str):
                errors.append(f"prompt[{i}].content: expected a string")
        return
    if prompt is None:
        errors.append("prompt: required")
    else:
        errors.append(f"prompt: expected a string or a chat transcript, got {type(prompt).__name__}")


def _check_responses(raw, errors: list[str]) -> tuple[ResponseIn, ResponseIn] | None:
    if raw is None:
        errors.append("responses: required")
        return None
    if not isinstance(raw, list):
        errors.append(f"responses: expected a list, got {type(raw).__name__}")
        return None
    if len(raw) != 2:
        errors.append(f"responses: expected exactly 2, got {len(raw)}")
        return None
    out = []
    for i, resp in enumerate(raw):
        if not isinstance(resp, dict):
            errors.append(f"responses[{i}]: expected an object")
            return None
        unknown = set(resp) - {"key", "model", "text"}
        if unknown:
            errors.append(f"responses[{i}]: unknown field(s) {', '.join(sorted(unknown))}")
        key, model, text = resp.get("key"), resp.get("model"), resp.get("text")
        if not _nonempty_str(key) or len(key) > MAX_ID_LENGTH:
            errors.append(f"responses[{i}].key: expected a non-empty string of at most {MAX_ID_LENGTH} characters")
        if not _nonempty_str(model) or len(model) > MAX_ID_LENGTH:
            errors.append(f"responses[{i}].model: expected a non-empty string of at most {MAX_ID_LENGTH} characters")
        if not _nonempty_str(text):
            errors.append(f"responses[{i}].text: must be a non-empty string")
        out.append(ResponseIn(key, model, text))
    if errors:
        return None
    if TIE in (out[0].key, out[1].key):
        errors.append(f"responses: the key {TIE!r} is reserved (a pairwise answer of {TIE!r} means a tie)")
        return None
    if out[0].key == out[1].key:
        errors.append(f"responses: duplicate key {out[0].key!r}; the two responses need different keys")
        return None
    return out[0], out[1]


def _check_label(i, raw, rubric: RubricDefinition | None, keys, errors) -> LabelIn | None:
    where = f"labels[{i}]"
    if not isinstance(raw, dict):
        errors.append(f"{where}: expected an object")
        return None
    unknown = set(raw) - LABEL_KEYS
    if unknown:
        errors.append(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        return None
    annotator, kind, slug = raw.get("annotator"), raw.get("kind"), raw.get("criterion")
    if not _nonempty_str(annotator) or len(annotator) > 200:
        errors.append(f"{where}.annotator: expected a non-empty string")
        return None
    if kind not in LABEL_KINDS:
        errors.append(f"{where}.kind: expected one of {', '.join(LABEL_KINDS)}, got {kind!r}")
        return None
    if rubric is None:
        errors.append(f"{where}: the campaign has no published rubric to check labels against (import_rubric first)")
        return None
    criterion = rubric.criterion(slug) if isinstance(slug, str) else None
    if criterion is None:
        known = ", ".join(c.slug for c in rubric.criteria)
        errors.append(f"{where}.criterion: unknown criterion {slug!r} (rubric has: {known})")
        return None
    response = raw.get("response")
    if criterion.per_response:
        if response is None:
            errors.append(f"{where}.response: criterion {slug!r} is per response; name the response key")
            return None
        if response not in keys:
            errors.append(f"{where}.response: {response!r} is not one of this item's responses {list(keys)}")
            return None
    elif response is not None:
        errors.append(f"{where}.response: criterion {slug!r} is not per response; remove 'response'")
        return None
    try:
        value = criterion.check_value(raw.get("value"), keys)
    except ValueError as exc:
        errors.append(f"{where}.value: {exc}")
        return None
    confidence = raw.get("confidence")
    if confidence is not None and (
        isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 <= confidence <= 1
    ):
        errors.append(f"{where}.confidence: expected a number in [0, 1], got {confidence!r}")
        return None
    rationale = raw.get("rationale", "")
    if not isinstance(rationale, str):
        errors.append(f"{where}.rationale: expected a string")
        return None
    created_at = raw.get("created_at")
    if created_at is not None:
        try:
            created_at = datetime.fromisoformat(created_at)
        except (TypeError, ValueError):
            errors.append(f"{where}.created_at: expected an ISO-8601 date-time, got {created_at!r}")
            return None
        if created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=UTC)
    return LabelIn(
        annotator,
        kind,
        slug,
        response,
        value,
        None if confidence is None else float(confidence),
        rationale,
        created_at,
    )


def parse_gold(raw, rubric: RubricDefinition | None, keys: tuple[str, str], errors: list[str]) -> list[dict] | None:
    """Validate a gold item's known answers (the shape of a label without annotator and kind).

    Returns them in canonical form (scale values as integers, `response` only for per-response
    criteria), or None after appending messages that name the offending entry to `errors`.
    """
    if not isinstance(raw, list) or not raw:
        errors.append("gold: expected a non-empty list of known answers")
        return None
    if rubric is None:
        errors.append("gold: the campaign has no published rubric to check gold answers against")
        return None
    out, seen, failed = [], set(), False
    for i, entry in enumerate(raw):
        where = f"gold[{i}]"
        if not isinstance(entry, dict):
            errors.append(f"{where}: expected an object")
            failed = True
            continue
        unknown = set(entry) - GOLD_KEYS
        if unknown:
            errors.append(f"{where}: unknown field(s) {', '.join(sorted(unknown))} (known: criterion, response, value)")
            failed = True
            continue
        slug = entry.get("criterion")
        criterion = rubric.criterion(slug) if isinstance(slug, str) else None
        if criterion is None:
            known = ", ".join(c.slug for c in rubric.criteria)
            errors.append(f"{where}.criterion: unknown criterion {slug!r} (rubric has: {known})")
            failed = True
            continue
        response = entry.get("response")
        if criterion.per_response:
            if response is None:
                errors.append(f"{where}.response: criterion {slug!r} is per response; name the response key")
                failed = True
                continue
            if response not in keys:
                errors.append(f"{where}.response: {response!r} is not one of this item's responses {list(keys)}")
                failed = True
                continue
        elif response is not None:
            errors.append(f"{where}.response: criterion {slug!r} is not per response; remove 'response'")
            failed = True
            continue
        if "value" not in entry:
            errors.append(f"{where}.value: required")
            failed = True
            continue
        try:
            value = criterion.check_value(entry["value"], keys)
        except ValueError as exc:
            errors.append(f"{where}.value: {exc}")
            failed = True
            continue
        if (slug, response) in seen:
            errors.append(f"{where}: {slug!r}" + (f" for {response!r}" if response else "") + " is given twice")
            failed = True
            continue
        seen.add((slug, response))
        answer = {"criterion": slug, "value": criterion.parse_stored(value)}
        if response is not None:
            answer["response"] = response
        out.append(answer)
    return None if failed else out


def parse_line(obj, rubric: RubricDefinition | None) -> LineIn:
    """Validate one decoded JSON line; raise LineError naming every problem found."""
    if not isinstance(obj, dict):
        raise LineError([f"expected a JSON object, got {type(obj).__name__}"])
    errors: list[str] = []
    unknown = set(obj) - TOP_LEVEL_KEYS
    if unknown:
        errors.append(f"unknown field(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(TOP_LEVEL_KEYS))})")
    external_id = obj.get("external_id")
    if not _nonempty_str(external_id) or len(external_id) > MAX_ID_LENGTH:
        errors.append(f"external_id: expected a non-empty string of at most {MAX_ID_LENGTH} characters")
    prompt = obj.get("prompt")
    _check_prompt(prompt, errors)
    prompt_id = obj.get("prompt_id")
    if prompt_id is not None and (not _nonempty_str(prompt_id) or len(prompt_id) > MAX_ID_LENGTH):
        errors.append(f"prompt_id: expected a non-empty string of at most {MAX_ID_LENGTH} characters")
    responses = _check_responses(obj.get("responses"), errors)
    risk_prior = obj.get("risk_prior")
    if risk_prior is not None and (
        isinstance(risk_prior, bool) or not isinstance(risk_prior, int | float) or not 0 <= risk_prior <= 1
    ):
        errors.append(f"risk_prior: expected a number in [0, 1], got {risk_prior!r}")
    tags = obj.get("tags", [])
    if not isinstance(tags, list) or not all(_nonempty_str(t) for t in tags):
        errors.append("tags: expected a list of non-empty strings")
    metadata = obj.get("metadata", {})
    if not isinstance(metadata, dict):
        errors.append("metadata: expected a JSON object")
    raw_labels = obj.get("labels", [])
    labels: list[LabelIn] = []
    if not isinstance(raw_labels, list):
        errors.append("labels: expected a list")
    elif raw_labels and responses is not None:
        keys = (responses[0].key, responses[1].key)
        seen = set()
        for i, raw in enumerate(raw_labels):
            label = _check_label(i, raw, rubric, keys, errors)
            if label is None:
                continue
            group = "lead" if label.kind == "lead" else "judgment"
            ident = (label.annotator, group, label.criterion, label.response)
            if ident in seen:
                errors.append(
                    f"labels[{i}]: {label.annotator!r} already answered {label.criterion!r}"
                    + (f" for {label.response!r}" if label.response else "")
                    + " in this line"
                )
            seen.add(ident)
            labels.append(label)
        kinds_by_annotator: dict[str, set] = {}
        for label in labels:
            if label.kind != "lead":
                kinds_by_annotator.setdefault(label.annotator, set()).add(label.kind)
        for name, kinds in kinds_by_annotator.items():
            if len(kinds) > 1:
                errors.append(f"labels: annotator {name!r} cannot label both as human and as model")
    gold = None
    if obj.get("gold") is not None and responses is not None:
        gold = parse_gold(obj["gold"], rubric, (responses[0].key, responses[1].key), errors)
    if errors:
        raise LineError(errors)
    text = prompt_text(prompt)
    # FORMATS.md: the default prompt_id is the SHA-256 of the prompt text (of its canonical JSON for a transcript).
    prompt_hash = sha256_hex(prompt if isinstance(prompt, str) else canonical_json(prompt))
    return LineIn(
        external_id=external_id,
        prompt_id=prompt_id or prompt_hash,
        prompt=prompt,
        prompt_text=text,
        prompt_hash=prompt_hash,
        responses=responses,
        risk_prior=None if risk_prior is None else float(risk_prior),
        tags=tags,
        metadata=metadata,
        labels=labels,
        # The whole line, gold included: re-importing with other gold answers is a conflict.
        content_hash=sha256_hex(canonical_json(obj)),
        gold=gold,
    )
