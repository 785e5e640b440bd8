"""Exporting the full JSONL and importing it into an empty campaign gives the same final answers."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from reviews.datasets.export import Filters, create_dataset, dataset_file
from reviews.models import Campaign, FinalAnswer, Item
from tests.conftest import shared_data

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def final_answers(campaign) -> dict:
    """Every final answer keyed by public ids: (criterion, prompt id, response key or item id) -> (value, basis)."""
    out = {}
    rows = FinalAnswer.objects.filter(campaign=campaign).values_list(
        "criterion", "response__prompt__external_id", "response__key", "item__external_id", "value", "basis"
    )
    for criterion, prompt_id, key, item_id, value, basis in rows:
        out[(criterion, prompt_id, key) if key else (criterion, item_id)] = (value, basis)
    return out


def status(slug) -> dict:
    out = StringIO()
    call_command("campaign_status", slug, "--json", stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def settings_dir(settings, tmp_path):
    settings.REVIEWS_DATASET_DIR = tmp_path / "datasets"
    return tmp_path


def test_xstest_full_export_imports_back_with_the_same_final_answers(settings_dir):
    rubric, pool = shared_data("xstest", "rubric.json"), shared_data("xstest", "pool.jsonl")
    call_command("create_campaign", "xstest", "--title", "XSTest", "--rubric", str(rubric), stdout=StringIO())
    call_command("import_pool", "xstest", str(pool), "--no-progress", stdout=StringIO())
    out_file = settings_dir / "xstest-full.jsonl"
    printed = StringIO()
    call_command("export_dataset", "xstest", "--format", "full", "--out", str(out_file), stdout=printed)
    original = Campaign.objects.get(slug="xstest")
    version = original.dataset_versions.get()
    assert f"dataset {version.uid} sha256 {version.content_hash}" in printed.getvalue()
    assert version.counts["items"] == version.counts["lines"] == 1350
    assert dataset_file(version).read_bytes() == out_file.read_bytes()

    call_command("create_campaign", "copy", "--title", "Copy", "--rubric", str(rubric), stdout=StringIO())
    call_command("import_pool", "copy", str(out_file), "--no-progress", stdout=StringIO())
    copy = Campaign.objects.get(slug="copy")
    before, after = final_answers(original), final_answers(copy)
    assert len(before) > 2000
    assert after == before
    keys = ("items", "prompts", "responses", "human_judgments", "human_labels", "model_labels", "adjudicated_responses")
    assert {k: status("copy")[k] for k in keys} == {k: status("xstest")[k] for k in keys}
    assert status("copy")["final_answers"] == status("xstest")["final_answers"]
    assert list(
        Item.objects.filter(campaign=copy, resolved=True).values_list("external_id", flat=True).order_by("external_id")
    ) == list(
        Item.objects.filter(campaign=original, resolved=True)
        .values_list("external_id", flat=True)
        .order_by("external_id")
    )
    # The export of the copy is byte for byte the export of the original: nothing was lost or added.
    again = create_dataset(copy, "full", Filters())
    assert again.content_hash == version.content_hash


def test_gold_items_and_their_answers_survive_the_round_trip(settings_dir, campaign, admin):
    from reviews.campaigns.setup import create_campaign
    from reviews.data.importer import import_pool
    from reviews.labeling.gold import mark_gold
    from tests.conftest import RUBRIC, jsonl, pool_line

    import_pool(campaign, jsonl(pool_line("plain"), pool_line("known")))
    known = Item.objects.get(campaign=campaign, external_id="known")
    answers = [
        {"criterion": "preference", "value": known.response_a.key},
        {"criterion": "compliance", "response": known.response_b.key, "value": "full_refusal"},
    ]
    mark_gold(known, answers, user=admin)
    version = create_dataset(campaign, "full", Filters(), user=admin)

    copy = create_campaign("gold-copy", "Copy", RUBRIC)
    with open(dataset_file(version), "rb") as stream:
        result = import_pool(copy, stream)
    assert result.created == 2, result
    copied = {i.external_id: i for i in Item.objects.filter(campaign=copy)}
    assert not copied["plain"].is_gold
    assert copied["known"].is_gold
    assert copied["known"].gold_answers == Item.objects.get(pk=known.pk).gold_answers
