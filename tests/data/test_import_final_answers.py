"""The import decides final answers and item flags from the labels in hand (reviews.data.importer);
reviews.leads.final_answers.refresh decides them from the database. Both must agree: after an
import, refreshing every item changes nothing."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from reviews.data.importer import import_pool
from reviews.leads import final_answers
from reviews.models import FinalAnswer, Item, Response
from tests.conftest import jsonl, pool_line

pytestmark = pytest.mark.django_db

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def label(annotator, criterion, value, response=None, kind="human", **extra):
    out = {"annotator": annotator, "kind": kind, "criterion": criterion, "value": value, **extra}
    if response is not None:
        out["response"] = response
    return out


def snapshot():
    """Every final answer (with its id: a refresh that rewrites one changes it) and every item's flags."""
    answers = set(
        FinalAnswer.objects.values_list("id", "criterion", "item_id", "response_id", "value", "basis", "human_votes")
    )
    flags = set(Item.objects.values_list("id", "human_judgments", "adjudicated", "resolved"))
    return answers, flags


def assert_refresh_changes_nothing(campaign):
    before = snapshot()
    final_answers.refresh(campaign, Item.objects.values_list("id", flat=True))
    assert snapshot() == before


def random_pool(seed: int, n_prompts: int = 20, start: int = 0) -> list[dict]:
    """Prompts of four responses shown by two to four items each; labels from humans who agree,
    disagree or tie, an automated judge, and leads whose adjudications sometimes share a time."""
    rng = random.Random(seed)
    lines = []

    def agree(values):  # mostly the first value, so that some items end up resolved
        return values[0] if rng.random() < 0.92 else values[1]

    for p in range(start, start + n_prompts):
        keys = ["r1", "r2", "r3", "r4"]
        responses = {k: {"key": k, "model": f"m-{k}", "text": f"text {k} of prompt {p}"} for k in keys}
        for n in range(rng.randint(2, 4)):
            a, b = rng.sample(keys, 2)
            labels = []
            if rng.random() < 0.8:
                for who in rng.sample(["h1", "h2", "h3"], rng.randint(1, 3)):
                    labels.append(label(who, "preference", agree([a, rng.choice([b, "tie"])])))
                    for key in (a, b):
                        labels.append(label(who, "compliance", agree(["full_compliance", "full_refusal"]), key))
                        labels.append(label(who, "quality", agree([4, 3]), key))
                if rng.random() < 0.3:
                    labels.append(label("judge", "quality", 5, a, kind="model", confidence=0.9))
                if rng.random() < 0.4:
                    at = (T0 + timedelta(minutes=rng.choice([0, 0, 1]))).isoformat()
                    lead = rng.choice(["lead1", "lead2"])
                    labels.append(
                        label(lead, "compliance", rng.choice(["harmful", "full_refusal"]), b, "lead", created_at=at)
                    )
                    labels.append(label(lead, "preference", rng.choice([a, b]), kind="lead", created_at=at))
            lines.append(
                pool_line(
                    f"p{p}-{n}",
                    prompt_id=f"prompt-{p}",
                    prompt=f"Question {p}?",
                    responses=[responses[a], responses[b]],
                    labels=labels,
                )
            )
    return lines


@pytest.mark.parametrize("batch_size", [1, 5, 1000])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_import_and_a_refresh_agree_on_a_mixed_pool(campaign, settings, seed, batch_size):
    settings.REVIEWS_IMPORT_BATCH_SIZE = batch_size  # small: prompts straddle batch boundaries
    import_pool(campaign, jsonl(*random_pool(seed)))
    bases = set(FinalAnswer.objects.values_list("basis", flat=True))
    assert bases == {FinalAnswer.Basis.UNANIMOUS, FinalAnswer.Basis.ADJUDICATION}
    assert Item.objects.filter(resolved=True).exists()
    assert Item.objects.filter(resolved=False, human_judgments__gt=0).exists()
    assert_refresh_changes_nothing(campaign)


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_prompts_shared_with_an_earlier_import_combine_their_labels(campaign, settings, batch_size):
    settings.REVIEWS_IMPORT_BATCH_SIZE = batch_size
    import_pool(campaign, jsonl(*random_pool(7, n_prompts=6)))
    # The same prompts again under new items (other pairs of the same responses), and new prompts.
    again = [{**line, "external_id": "again-" + line["external_id"]} for line in random_pool(8, n_prompts=6)]
    import_pool(campaign, jsonl(*again, *random_pool(9, n_prompts=3, start=100)))
    assert_refresh_changes_nothing(campaign)


def test_a_response_labeled_in_two_imports_is_decided_by_both(campaign):
    shared = {"prompt_id": "p1", "prompt": "Q?"}
    r = {k: {"key": k, "model": f"model-{k}", "text": f"text {k}"} for k in "abc"}
    both = [label("h1", "preference", "a"), label("h2", "preference", "a")]
    import_pool(
        campaign,
        jsonl(
            pool_line(
                "ab", responses=[r["a"], r["b"]], labels=[*both, label("h1", "compliance", "harmful", "b")], **shared
            )
        ),
    )
    assert not FinalAnswer.objects.filter(criterion="compliance").exists()
    import_pool(
        campaign,
        jsonl(
            pool_line("bc", responses=[r["b"], r["c"]], labels=[label("h2", "compliance", "harmful", "b")], **shared)
        ),
    )
    b = Response.objects.get(key="b")
    assert FinalAnswer.objects.get(criterion="compliance").response == b
    assert FinalAnswer.objects.get(criterion="compliance").human_votes == 2
    assert_refresh_changes_nothing(campaign)


def test_the_latest_adjudication_wins_and_a_tie_in_time_goes_to_the_later_row(campaign):
    shared = {"prompt_id": "p1", "prompt": "Q?"}
    r = {k: {"key": k, "model": f"model-{k}", "text": f"text {k}"} for k in "abc"}
    early, late = T0.isoformat(), (T0 + timedelta(hours=1)).isoformat()
    import_pool(
        campaign,
        jsonl(
            # Response b: the later adjudication (on the first line) wins over the earlier one.
            pool_line(
                "ab",
                responses=[r["a"], r["b"]],
                labels=[label("l1", "compliance", "harmful", "b", "lead", created_at=late)],
                **shared,
            ),
            pool_line(
                "bc",
                responses=[r["b"], r["c"]],
                labels=[
                    label("l2", "compliance", "full_refusal", "b", "lead", created_at=early),
                    # Response c: two adjudications at the same time; the one stored last wins.
                    label("l2", "compliance", "full_refusal", "c", "lead", created_at=early),
                ],
                **shared,
            ),
            pool_line(
                "ca",
                responses=[r["c"], r["a"]],
                labels=[label("l1", "compliance", "full_compliance", "c", "lead", created_at=early)],
                **shared,
            ),
        ),
    )
    final = dict(FinalAnswer.objects.values_list("response__key", "value"))
    assert final == {"b": "harmful", "c": "full_compliance"}
    assert set(Item.objects.values_list("external_id", "adjudicated", "human_judgments")) == {
        ("ab", True, 0),
        ("bc", True, 0),
        ("ca", True, 0),
    }
    assert_refresh_changes_nothing(campaign)
