"""Rubric definitions (FORMATS.md section 2): parsing, validation and answer checking."""

import re
from dataclasses import dataclass, field

from reviews.core.exceptions import RubricError

KINDS = ("pairwise", "choice", "scale")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
TIE = "tie"


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    risk: bool = False


@dataclass(frozen=True)
class Criterion:
    slug: str
    kind: str
    question: str
    per_response: bool = False
    options: tuple[Option, ...] = ()
    allow_tie: bool = False
    min: int | None = None
    max: int | None = None

    @property
    def option_values(self) -> frozenset[str]:
        return frozenset(o.value for o in self.options)

    @property
    def risk_values(self) -> frozenset[str]:
        return frozenset(o.value for o in self.options if o.risk)

    def check_value(self, value, response_keys: tuple[str, str]) -> str:
        """Validate one answer; return its canonical string form or raise ValueError."""
        if self.kind == "pairwise":
            if value == TIE:
                if not self.allow_tie:
                    raise ValueError(f"criterion {self.slug!r} does not allow a tie")
                return TIE
            if value not in response_keys:
                raise ValueError(
                    f"criterion {self.slug!r}: expected one of the response keys "
                    f"{list(response_keys)}{' or tie' if self.allow_tie else ''}, got {value!r}"
                )
            return value
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.option_values:
                raise ValueError(
                    f"criterion {self.slug!r}: {value!r} is not an option "
                    f"(options: {', '.join(sorted(self.option_values))})"
                )
            return value
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise ValueError(f"criterion {self.slug!r}: expected an integer, got {value!r}")
        if not self.min <= value <= self.max:
            raise ValueError(f"criterion {self.slug!r}: {value} is outside {self.min}..{self.max}")
        return str(int(value))

    def parse_stored(self, value: str):
        """The JSON value of a stored (string) answer: an int for scale criteria."""
        return int(value) if self.kind == "scale" else value

    def to_json(self) -> dict:
        data = {"slug": self.slug, "kind": self.kind, "question": self.question}
        if self.kind == "pairwise":
            data["allow_tie"] = self.allow_tie
        else:
            data["per_response"] = self.per_response
        if self.kind == "choice":
            data["options"] = [
                {"value": o.value, "label": o.label, **({"risk": True} if o.risk else {})} for o in self.options
            ]
        if self.kind == "scale":
            data["min"], data["max"] = self.min, self.max
        return data


@dataclass(frozen=True)
class RubricDefinition:
    slug: str
    title: str
    guidelines: str
    criteria: tuple[Criterion, ...] = field(default_factory=tuple)

    def criterion(self, slug: str) -> Criterion | None:
        return next((c for c in self.criteria if c.slug == slug), None)

    @property
    def by_slug(self) -> dict[str, Criterion]:
        return {c.slug: c for c in self.criteria}

    def to_json(self) -> dict:
        return {
            "slug": self.slug,
            "title": self.title,
            "guidelines": self.guidelines,
            "criteria": [c.to_json() for c in self.criteria],
        }


def _criterion(index: int, raw, errors: list[str]) -> Criterion | None:
    where = f"criteria[{index}]"
    if not isinstance(raw, dict):
        errors.append(f"{where}: expected an object")
        return None
    slug, kind, question = raw.get("slug"), raw.get("kind"), raw.get("question", "")
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        errors.append(f"{where}.slug: expected a lowercase slug, got {slug!r}")
        return None
    where = f"criterion {slug!r}"
    if kind not in KINDS:
        errors.append(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        return None
    if not isinstance(question, str):
        errors.append(f"{where}: question must be a string")
        return None
    per_response = raw.get("per_response", False)
    if not isinstance(per_response, bool):
        errors.append(f"{where}: per_response must be true or false")
        return None
    if kind == "pairwise":
        if per_response:
            errors.append(f"{where}: a pairwise criterion cannot be per_response")
            return None
        allow_tie = raw.get("allow_tie", False)
        if not isinstance(allow_tie, bool):
            errors.append(f"{where}: allow_tie must be true or false")
            return None
        return Criterion(slug, kind, question, allow_tie=allow_tie)
    if kind == "choice":
        options, values = [], set()
        raw_options = raw.get("options")
        if not isinstance(raw_options, list) or len(raw_options) < 2:
            errors.append(f"{where}: a choice criterion needs a list of at least two options")
            return None
        for opt in raw_options:
            value = opt.get("value") if isinstance(opt, dict) else None
            if not isinstance(value, str) or not value:
                errors.append(f"{where}: every option needs a non-empty string value")
                return None
            if value in values:
                errors.append(f"{where}: option {value!r} appears twice")
                return None
            risk = opt.get("risk", False)
            if not isinstance(risk, bool):
                errors.append(f"{where}: option {value!r}: risk must be true or false")
                return None
            values.add(value)
            options.append(Option(value, str(opt.get("label") or value), risk))
        return Criterion(slug, kind, question, per_response=per_response, options=tuple(options))
    lo, hi = raw.get("min"), raw.get("max")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (lo, hi)) or lo >= hi:
        errors.append(f"{where}: a scale criterion needs integers min < max, got {lo!r}..{hi!r}")
        return None
    return Criterion(slug, kind, question, per_response=per_response, min=lo, max=hi)


def parse_rubric(raw) -> RubricDefinition:
    """Validate a rubric definition (parsed JSON); raise RubricError listing every problem."""
    errors: list[str] = []
    if not isinstance(raw, dict):
        raise RubricError(["a rubric must be a JSON object"])
    slug, title = raw.get("slug"), raw.get("title")
    guidelines = raw.get("guidelines", "")
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        errors.append(f"slug: expected a lowercase slug, got {slug!r}")
    if not isinstance(title, str) or not title.strip():
        errors.append("title: expected a non-empty string")
    if not isinstance(guidelines, str):
        errors.append("guidelines: expected a string (Markdown)")
    raw_criteria = raw.get("criteria")
    criteria: list[Criterion] = []
    if not isinstance(raw_criteria, list) or not raw_criteria:
        errors.append("criteria: expected a non-empty list")
    else:
        for index, item in enumerate(raw_criteria):
            crit = _criterion(index, item, errors)
            if crit is None:
                continue
            if any(c.slug == crit.slug for c in criteria):
                errors.append(f"criterion {crit.slug!r} appears twice")
                continue
            criteria.append(crit)
    if errors:
        raise RubricError(errors)
    return RubricDefinition(slug, title.strip(), guidelines, tuple(criteria))
