import pytest

from reviews.core.exceptions import RubricError
from reviews.rubrics.definition import parse_rubric
from tests.conftest import RUBRIC


def test_it_parses_the_three_kinds_and_round_trips():
    parsed = parse_rubric(RUBRIC)
    assert [c.kind for c in parsed.criteria] == ["pairwise", "choice", "scale"]
    assert parsed.criterion("compliance").risk_values == {"harmful"}
    assert parse_rubric(parsed.to_json()) == parsed


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"slug": "Not A Slug"}, "slug: expected a lowercase slug"),
        ({"title": " "}, "title: expected a non-empty string"),
        ({"criteria": []}, "criteria: expected a non-empty list"),
        ({"criteria": [{"slug": "x", "kind": "ranking", "question": "?"}]}, "kind must be one of"),
        ({"criteria": [{"slug": "x", "kind": "choice", "options": [{"value": "a"}]}]}, "at least two options"),
        (
            {"criteria": [{"slug": "x", "kind": "choice", "options": [{"value": "a"}, {"value": "a"}]}]},
            "option 'a' appears twice",
        ),
        ({"criteria": [{"slug": "x", "kind": "scale", "min": 5, "max": 1}]}, "integers min < max"),
        ({"criteria": [{"slug": "x", "kind": "pairwise", "per_response": True}]}, "cannot be per_response"),
        (
            {"criteria": [{"slug": "x", "kind": "pairwise"}, {"slug": "x", "kind": "pairwise"}]},
            "criterion 'x' appears twice",
        ),
    ],
)
def test_it_refuses_malformed_rubrics_with_a_reason(change, message):
    with pytest.raises(RubricError) as excinfo:
        parse_rubric({**RUBRIC, **change})
    assert any(message in error for error in excinfo.value.errors), excinfo.value.errors


def test_it_checks_answers_against_each_kind():
    parsed = parse_rubric(RUBRIC)
    keys = ("a", "b")
    assert parsed.criterion("preference").check_value("tie", keys) == "tie"
    assert parsed.criterion("preference").check_value("b", keys) == "b"
    assert parsed.criterion("quality").check_value(7, keys) == "7"
    assert parsed.criterion("quality").parse_stored("7") == 7
    for criterion, value in [
        ("preference", "c"),
        ("compliance", "maybe"),
        ("quality", 8),
        ("quality", 2.5),
        ("quality", True),
    ]:
        with pytest.raises(ValueError):
            parsed.criterion(criterion).check_value(value, keys)
    no_tie = parse_rubric({**RUBRIC, "criteria": [{"slug": "p", "kind": "pairwise", "allow_tie": False}]})
    with pytest.raises(ValueError, match="does not allow a tie"):
        no_tie.criterion("p").check_value("tie", keys)
