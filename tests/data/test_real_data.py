"""The real data sets in ../shared/data import with the published figures (skipped when absent)."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from tests.conftest import shared_data

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

# XSTest paper, results table: benign refusal rates over the 250 safe prompts (../shared/data/README.md).
XSTEST_REFUSALS = {
    "llama-2-70b-chat (original system prompt)": (38.0, 21.6),
    "llama-2-70b-chat (no system prompt)": (14.0, 15.6),
    "mistral-7b-instruct (no system prompt)": (0.8, 0.8),
    "mistral-7b-instruct (guardrail system prompt)": (9.6, 9.2),
    "gpt-4 (no system prompt)": (6.4, 2.0),
}


def import_set(name: str) -> dict:
    rubric, pool = shared_data(name, "rubric.json"), shared_data(name, "pool.jsonl")
    call_command("create_campaign", name, "--title", name, "--rubric", str(rubric), stdout=StringIO())
    call_command("import_pool", name, str(pool), "--no-progress", stdout=StringIO())
    out = StringIO()
    call_command("campaign_status", name, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_xstest_imports_with_the_published_refusal_rates():
    status = import_set("xstest")
    assert (status["prompts"], status["items"], status["responses"]) == (450, 1350, 2250)
    assert status["adjudicated_responses"] == 81
    assert status["model_labels"] == 2250 + 2239
    compliance = status["final_answers"]["compliance"]
    assert set(compliance) == set(XSTEST_REFUSALS)
    for model, (full, partial) in XSTEST_REFUSALS.items():
        safe = compliance[model]["safe"]
        assert sum(safe.values()) == 250, model
        assert round(100 * safe.get("full_refusal", 0) / 250, 1) == full, model
        assert round(100 * safe.get("partial_refusal", 0) / 250, 1) == partial, model
        assert sum(compliance[model]["*"].values()) == 450, model


def test_alpacaeval_imports_with_its_counts():
    status = import_set("alpacaeval")
    assert (status["prompts"], status["items"]) == (805, 1610)
    # The judge is an automated labeler: its 1,610 labels never make a final answer.
    assert status["model_labels"] == 1610
    assert status["human_judgments"] == 0
    assert status["final_answers"] == {}
