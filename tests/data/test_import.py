"""Pool import (FORMATS.md section 1): every rule, atomicity, idempotence, labels and final answers."""

import io
import json

import pytest

from reviews.campaigns.setup import create_campaign
from reviews.core.exceptions import ImportFailed
from reviews.data.importer import import_pool
from reviews.data.pool_format import sha256_hex
from reviews.models import (
    Adjudication,
    Annotator,
    Answer,
    FeedbackEvent,
    FinalAnswer,
    Item,
    Judgment,
    LabelKind,
    Prompt,
    Response,
)
from tests.conftest import jsonl, pool_line

pytestmark = pytest.mark.django_db


def label(annotator, criterion, value, response=None, kind="human", **extra):
    out = {"annotator": annotator, "kind": kind, "criterion": criterion, "value": value, **extra}
    if response is not None:
        out["response"] = response
    return out


def every_criterion(annotator, preference="a", compliance="full_compliance", quality=5, kind="human"):
    """Labels answering every criterion of tests.conftest.RUBRIC for the two responses a and b."""
    return [
        label(annotator, "preference", preference, kind=kind),
        *(label(annotator, "compliance", compliance, response=key, kind=kind) for key in "ab"),
        *(label(annotator, "quality", quality, response=key, kind=kind) for key in "ab"),
    ]


def assert_nothing_written():
    assert Item.objects.count() == 0
    assert Prompt.objects.count() == 0
    assert Response.objects.count() == 0
    assert Judgment.objects.count() == 0
    assert Answer.objects.count() == 0


def failed_import(campaign, *lines) -> list[str]:
    with pytest.raises(ImportFailed) as excinfo:
        import_pool(campaign, jsonl(*lines))
    assert_nothing_written()
    return excinfo.value.report.errors


# -- bad input: each rule gets a line-numbered message and writes nothing ------------------


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('{"external_id": "x", ', "line 2: invalid JSON"),
        (pool_line("x", prompt=""), "line 2: prompt: must not be empty"),
        ({k: v for k, v in pool_line("x").items() if k != "prompt"}, "line 2: prompt: required"),
        (pool_line("x", prompt=[]), "line 2: prompt: a chat transcript must have at least one turn"),
        (pool_line("x", prompt=[{"role": "robot", "content": "hi"}]), "line 2: prompt[0].role"),
        (
            pool_line("x", responses=[{"key": "a", "model": "m", "text": "t"}] * 3),
            "line 2: responses: expected exactly 2, got 3",
        ),
        (
            pool_line(
                "x", responses=[{"key": "a", "model": "m", "text": "t"}, {"key": "a", "model": "n", "text": "u"}]
            ),
            "line 2: responses: duplicate key 'a'",
        ),
        (
            pool_line("x", responses=[{"key": "a", "model": "m", "text": ""}, {"key": "b", "model": "n", "text": "u"}]),
            "line 2: responses[0].text: must be a non-empty string",
        ),
        (pool_line("x", risk_prior=1.5), "line 2: risk_prior: expected a number in [0, 1], got 1.5"),
        (pool_line("x", risk_prior=-0.1), "line 2: risk_prior: expected a number in [0, 1]"),
        (pool_line("x", risk_prior="high"), "line 2: risk_prior: expected a number in [0, 1]"),
        (pool_line(""), "line 2: external_id: expected a non-empty string"),
        (pool_line("x", tags="safe"), "line 2: tags: expected a list of non-empty strings"),
        (pool_line("x", metadata=[1]), "line 2: metadata: expected a JSON object"),
        (pool_line("x", respones=[]), "line 2: unknown field(s) respones"),
        (pool_line("x", labels=[label("h1", "helpfulness", "a")]), "line 2: labels[0].criterion: unknown criterion"),
        (
            pool_line("x", labels=[label("h1", "compliance", "maybe", response="a")]),
            "line 2: labels[0].value: criterion 'compliance': 'maybe' is not an option",
        ),
        (
            pool_line("x", labels=[label("h1", "compliance", "full_refusal")]),
            "line 2: labels[0].response: criterion 'compliance' is per response",
        ),
        (
            pool_line("x", labels=[label("h1", "compliance", "full_refusal", response="zzz")]),
            "line 2: labels[0].response: 'zzz' is not one of this item's responses",
        ),
        (
            pool_line("x", labels=[label("h1", "preference", "a", response="a")]),
            "line 2: labels[0].response: criterion 'preference' is not per response",
        ),
        (pool_line("x", labels=[label("h1", "quality", 9, response="a")]), "9 is outside 1..7"),
        (pool_line("x", labels=[label("h1", "preference", "a", kind="robot")]), "labels[0].kind: expected one of"),
        (pool_line("x", labels=[label("h1", "preference", "a", confidence=2)]), "labels[0].confidence"),
        (pool_line("x", labels=[label("h1", "preference", "a", created_at="yesterday")]), "labels[0].created_at"),
        (
            pool_line("x", labels=[label("h1", "preference", "a"), label("h1", "preference", "b")]),
            "labels[1]: 'h1' already answered 'preference' in this line",
        ),
        ("[1, 2]", "line 2: expected a JSON object, got list"),
    ],
)
def test_a_malformed_line_is_reported_by_number_and_nothing_is_written(campaign, bad, message):
    errors = failed_import(campaign, pool_line("ok-1"), bad, pool_line("ok-3"))
    assert any(message in error for error in errors), errors


def test_non_utf8_bytes_are_an_error(campaign):
    errors = failed_import(campaign, pool_line("ok-1"), b'{"external_id": "caf\xe9"}')
    assert errors == ["line 2: not valid UTF-8 (invalid continuation byte at byte offset 20)"]


def test_an_empty_file_is_an_error(campaign):
    for body in (b"", b"\n\n"):
        with pytest.raises(ImportFailed) as excinfo:
            import_pool(campaign, io.BytesIO(body))
        assert excinfo.value.report.errors == ["the file is empty: no items to import"]
    assert_nothing_written()


def test_a_line_over_the_size_limit_is_an_error_but_a_1mb_response_imports(campaign, settings):
    assert settings.REVIEWS_IMPORT_MAX_LINE_BYTES == 10 * 1024 * 1024  # the documented default
    big = "x" * (1024 * 1024)
    huge = "y" * (10 * 1024 * 1024)
    errors = failed_import(
        campaign,
        pool_line("fine", responses=[{"key": "a", "model": "m", "text": big}, {"key": "b", "model": "n", "text": "b"}]),
        pool_line(
            "huge", responses=[{"key": "a", "model": "m", "text": huge}, {"key": "b", "model": "n", "text": "b"}]
        ),
        pool_line("after"),
    )
    assert errors == [f"line 2: longer than the limit of {10 * 1024 * 1024} bytes"]

    report = import_pool(
        campaign,
        jsonl(
            pool_line(
                "fine", responses=[{"key": "a", "model": "m", "text": big}, {"key": "b", "model": "n", "text": "b"}]
            )
        ),
    )
    assert report.created == 1
    assert Response.objects.get(key="a").text == big


def test_every_error_is_listed_not_only_the_first(campaign):
    errors = failed_import(campaign, pool_line("a", prompt=""), pool_line("b"), pool_line("c", risk_prior=3))
    assert [e.split(":")[0] for e in errors] == ["line 1", "line 3"]


def test_labels_need_a_published_rubric(db):
    bare = create_campaign("bare", "No rubric")
    with pytest.raises(ImportFailed) as excinfo:
        import_pool(bare, jsonl(pool_line("x", labels=[label("h1", "preference", "a")])))
    assert "no published rubric" in excinfo.value.report.errors[0]
    assert import_pool(bare, jsonl(pool_line("x"))).created == 1


# -- idempotence and conflicts -------------------------------------------------------------


def test_reimporting_the_same_file_creates_nothing(campaign):
    lines = [pool_line("a", labels=[label("h1", "preference", "a")]), pool_line("b")]
    first = import_pool(campaign, jsonl(*lines))
    assert (first.created, first.skipped) == (2, 0)
    counts = (Item.objects.count(), Judgment.objects.count(), Answer.objects.count())
    second = import_pool(campaign, jsonl(*lines))
    assert (second.created, second.skipped, second.conflicts) == (0, 2, 0)
    assert (Item.objects.count(), Judgment.objects.count(), Answer.objects.count()) == counts


def test_the_same_content_with_keys_in_another_order_is_skipped(campaign):
    line = pool_line("a")
    import_pool(campaign, jsonl(line))
    reordered = json.dumps(dict(reversed(list(line.items()))))
    assert import_pool(campaign, jsonl(reordered)).skipped == 1


def test_changed_content_under_a_known_external_id_is_a_conflict(campaign):
    import_pool(campaign, jsonl(pool_line("a")))
    with pytest.raises(ImportFailed) as excinfo:
        import_pool(campaign, jsonl(pool_line("new"), pool_line("a", tags=["unsafe"])))
    report = excinfo.value.report
    assert report.conflicts == 1
    assert report.errors == ["line 2: conflict: external_id 'a' is already imported with different content"]
    assert list(Item.objects.values_list("external_id", "tags")) == [("a", ["safe"])]


def test_a_duplicate_external_id_within_one_file_is_a_conflict(campaign):
    errors = failed_import(campaign, pool_line("a"), pool_line("a", tags=["other"]))
    assert errors == ["line 2: conflict: external_id 'a' is already imported with different content"]


def test_a_known_prompt_id_with_another_text_is_a_conflict(campaign):
    import_pool(campaign, jsonl(pool_line("a", prompt_id="p1")))
    with pytest.raises(ImportFailed) as excinfo:
        import_pool(campaign, jsonl(pool_line("b", prompt_id="p1", prompt="Something else?")))
    assert "prompt_id 'p1' already has a different prompt" in excinfo.value.report.errors[0]


def test_a_known_response_key_with_another_text_is_a_conflict(campaign):
    shared = {"prompt_id": "p1", "prompt": "Q?"}
    import_pool(campaign, jsonl(pool_line("a", **shared)))
    changed = [{"key": "a", "model": "model-a", "text": "edited"}, {"key": "c", "model": "m", "text": "c"}]
    with pytest.raises(ImportFailed) as excinfo:
        import_pool(campaign, jsonl(pool_line("b", responses=changed, **shared)))
    assert (
        "response 'a' of prompt 'p1' is already imported with a different model or text"
        in (excinfo.value.report.errors[0])
    )


# -- what gets stored ----------------------------------------------------------------------


def test_prompts_and_responses_are_shared_by_the_items_that_show_them(campaign):
    shared = {"prompt_id": "p1", "prompt": "Q?"}
    r = {k: {"key": k, "model": f"model-{k}", "text": f"text {k}"} for k in "abc"}
    import_pool(
        campaign,
        jsonl(
            pool_line("ab", responses=[r["a"], r["b"]], **shared),
            pool_line("bc", responses=[r["b"], r["c"]], **shared),
        ),
    )
    assert Prompt.objects.count() == 1
    assert Response.objects.count() == 3
    ab, bc = Item.objects.order_by("external_id")
    assert ab.response_b_id == bc.response_a_id


def test_the_default_prompt_id_is_the_sha256_of_the_prompt_text(campaign):
    line = pool_line("a")
    del line["prompt_id"]
    import_pool(campaign, jsonl(line))
    assert Prompt.objects.get().external_id == sha256_hex(line["prompt"])


def test_a_chat_transcript_prompt_is_kept_as_turns(campaign):
    turns = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    import_pool(campaign, jsonl(pool_line("chat", prompt=turns)))
    prompt = Prompt.objects.get()
    assert prompt.content == turns
    assert prompt.is_chat
    assert prompt.text == "system: Be brief.\n\nuser: Hi?"


def test_labels_become_judgments_adjudications_and_answers(campaign):
    labels = [
        label("ext:h1", "preference", "a", confidence=0.5, rationale="clearer"),
        label("ext:h1", "compliance", "full_compliance", response="a"),
        label("ext:h2", "preference", "a", created_at="2024-05-01T10:00:00"),
        label("ext:guard", "compliance", "harmful", response="b", kind="model", confidence=0.9),
        label("ext:lead", "compliance", "full_refusal", response="b", kind="lead", rationale="policy 3"),
    ]
    report = import_pool(campaign, jsonl(pool_line("a", labels=labels)))
    assert report.labels == 5
    item = Item.objects.get()
    h1 = Judgment.objects.get(annotator__name="ext:h1")
    assert (h1.kind, h1.source, h1.confidence, h1.rationale) == (LabelKind.HUMAN, "import", 0.5, "clearer")
    assert h1.rubric_version == campaign.rubric_version()
    assert h1.settings_version == campaign.settings
    assert sorted(h1.answers.values_list("criterion", "value")) == [
        ("compliance", "full_compliance"),
        ("preference", "a"),
    ]
    assert Judgment.objects.get(annotator__name="ext:h2").created_at.isoformat() == "2024-05-01T10:00:00+00:00"
    assert Judgment.objects.get(annotator__name="ext:guard").kind == LabelKind.MODEL
    adjudication = Adjudication.objects.get()
    assert (adjudication.lead.name, adjudication.rationale) == ("ext:lead", "policy 3")
    assert Annotator.objects.filter(user__isnull=True).count() == 4
    assert item.human_judgments == 2
    assert item.adjudicated
    event = FeedbackEvent.objects.get(item=item)
    assert event.action == FeedbackEvent.Action.IMPORTED
    assert event.feedback["labels"] == 5
    summary = FeedbackEvent.objects.get(item=None)
    assert summary.feedback["created"] == 1


# -- final answers (DESIGN.md) -------------------------------------------------------------


def final(criterion, **target):
    row = FinalAnswer.objects.filter(criterion=criterion, **target).first()
    return None if row is None else (row.value, row.basis)


def test_unanimous_answers_of_k_humans_become_final(campaign):
    assert campaign.settings.overlap_k == 2
    import_pool(
        campaign,
        jsonl(
            pool_line("two", labels=every_criterion("h1") + every_criterion("h2")),
            pool_line("one", labels=[label("h1", "preference", "a")]),
            pool_line("split", labels=[label("h1", "preference", "a"), label("h2", "preference", "b")]),
        ),
    )
    items = {i.external_id: i for i in Item.objects.all()}
    assert final("preference", item=items["two"]) == ("a", "unanimous")
    assert final("preference", item=items["one"]) is None
    assert final("preference", item=items["split"]) is None
    assert items["two"].resolved and not items["one"].resolved and not items["split"].resolved


def test_model_labels_never_decide(campaign):
    import_pool(
        campaign,
        jsonl(
            pool_line(
                "m", labels=[label("g1", "preference", "a", kind="model"), label("g2", "preference", "a", kind="model")]
            )
        ),
    )
    assert FinalAnswer.objects.count() == 0
    assert not Item.objects.get().resolved


def test_an_adjudication_overrides_the_votes(campaign):
    import_pool(
        campaign,
        jsonl(
            pool_line(
                "split",
                labels=[
                    label("h1", "compliance", "full_compliance", response="a"),
                    label("h2", "compliance", "full_refusal", response="a"),
                    label("lead", "compliance", "full_refusal", response="a", kind="lead"),
                ],
            )
        ),
    )
    response = Response.objects.get(key="a", prompt__external_id="p-split")
    assert final("compliance", response=response) == ("full_refusal", "adjudication")
    # Decided for that criterion, but the item's other criteria are still open.
    assert not Item.objects.get().resolved


def test_a_response_shown_by_two_items_gets_one_final_answer_from_labels_on_either(campaign):
    shared = {"prompt_id": "p1", "prompt": "Q?"}
    r = {k: {"key": k, "model": f"model-{k}", "text": f"text {k}"} for k in "abc"}
    import_pool(
        campaign,
        jsonl(
            pool_line(
                "ab",
                responses=[r["a"], r["b"]],
                labels=[label("h1", "compliance", "full_refusal", response="b")],
                **shared,
            ),
            pool_line(
                "bc",
                responses=[r["b"], r["c"]],
                labels=[label("h2", "compliance", "full_refusal", response="b")],
                **shared,
            ),
        ),
    )
    b = Response.objects.get(key="b")
    assert final("compliance", response=b) == ("full_refusal", "unanimous")
    assert FinalAnswer.objects.get(response=b).human_votes == 2
    assert Item.objects.filter(resolved=True).count() == 0  # preference and quality are still open


def test_an_item_is_resolved_once_every_criterion_is_decided(campaign):
    labels = every_criterion("h1") + every_criterion("h2")
    labels[-1] = label("h2", "quality", 3, response="b")  # one split answer keeps it open
    import_pool(campaign, jsonl(pool_line("x", labels=labels)))
    assert not Item.objects.get().resolved
    import_pool(
        campaign, jsonl(pool_line("y", labels=[*labels[:-1], label("lead", "quality", 4, response="b", kind="lead")]))
    )
    assert Item.objects.get(external_id="y").resolved


def test_labels_spread_over_import_batches_are_combined(campaign, settings):
    settings.REVIEWS_IMPORT_BATCH_SIZE = 1
    shared = {"prompt_id": "p1", "prompt": "Q?"}
    r = {k: {"key": k, "model": f"model-{k}", "text": f"text {k}"} for k in "abc"}
    import_pool(
        campaign,
        jsonl(
            pool_line(
                "ab", responses=[r["a"], r["b"]], labels=[label("h1", "compliance", "harmful", response="b")], **shared
            ),
            pool_line(
                "bc", responses=[r["b"], r["c"]], labels=[label("h2", "compliance", "harmful", response="b")], **shared
            ),
        ),
    )
    assert final("compliance", response=Response.objects.get(key="b")) == ("harmful", "unanimous")


def test_a_failed_import_rolls_back_earlier_batches(campaign, settings):
    settings.REVIEWS_IMPORT_BATCH_SIZE = 2
    lines = [pool_line(f"i{n}", labels=[label("h1", "preference", "a")]) for n in range(5)]
    errors = failed_import(campaign, *lines, pool_line("bad", prompt=""))
    assert errors == ["line 6: prompt: must not be empty"]
    assert FeedbackEvent.objects.count() == 0


def test_an_item_resolved_only_through_shared_responses_is_not_resolved(campaign):
    shared = {"prompt_id": "p1", "prompt": "Q?"}
    r = {k: {"key": k, "model": f"model-{k}", "text": f"text {k}"} for k in "abc"}
    both = every_criterion("h1") + every_criterion("h2")
    import_pool(
        campaign,
        jsonl(
            pool_line("ab", responses=[r["a"], r["b"]], labels=both, **shared),
            pool_line("ba", responses=[r["b"], r["a"]], **shared),
        ),
    )
    items = {i.external_id: i for i in Item.objects.all()}
    assert items["ab"].resolved
    assert not items["ba"].resolved  # nobody judged it, though both its responses are decided


def test_one_person_judging_two_items_that_show_a_response_votes_once_on_it(campaign):
    shared = {"prompt_id": "p1", "prompt": "Q?"}
    r = {k: {"key": k, "model": f"model-{k}", "text": f"text {k}"} for k in "abc"}
    import_pool(
        campaign,
        jsonl(
            pool_line(
                "ab", responses=[r["a"], r["b"]], labels=[label("h1", "compliance", "harmful", response="b")], **shared
            ),
            pool_line(
                "bc", responses=[r["b"], r["c"]], labels=[label("h1", "compliance", "harmful", response="b")], **shared
            ),
        ),
    )
    assert final("compliance", response=Response.objects.get(key="b")) is None  # one voter, k = 2


def test_the_key_tie_is_reserved_for_pairwise_ties(campaign):
    responses = [{"key": "tie", "model": "m", "text": "t"}, {"key": "b", "model": "n", "text": "u"}]
    errors = failed_import(campaign, pool_line("x", responses=responses))
    assert errors == ["line 1: responses: the key 'tie' is reserved (a pairwise answer of 'tie' means a tie)"]
