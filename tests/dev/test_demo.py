"""The demo data of `make run`: the generator, its import, the accounts, and idempotence."""

import io
import re
from collections import Counter
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from reviews.campaigns.setup import create_campaign
from reviews.core.roles import Role, role_of
from reviews.data.importer import import_pool
from reviews.data.pool_format import parse_line
from reviews.dev.demo import (
    DEMO_ACCOUNTS,
    DEMO_ITEMS,
    DEMO_RUBRIC,
    DEMO_SLUG,
    demo_lines,
    demo_pool_bytes,
    ensure_demo,
)
from reviews.models import (
    Adjudication,
    Annotator,
    Answer,
    Campaign,
    CampaignSettings,
    FeedbackEvent,
    FinalAnswer,
    Item,
    Judgment,
    LabelKind,
    Prompt,
    Response,
    RubricVersion,
    Source,
)
from reviews.people.accounts import create_user
from reviews.rubrics.definition import parse_rubric
from tests.conftest import PASSWORD, RUBRIC

PASSWORD_LINE = re.compile(r"^\s+(\w+)\s+role (\w+)\s+password: (\S+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def lines():
    return demo_lines()


def labels_of(line, kind):
    return [label for label in line.get("labels", []) if label["kind"] == kind]


def humans(line) -> set[str]:
    return {label["annotator"] for label in labels_of(line, "human")}


def everything() -> dict:
    """Row counts of every table the demo writes to."""
    models = [Campaign, CampaignSettings, RubricVersion, Item, Prompt, Response, Judgment, Adjudication, Answer]
    counts = {model.__name__: model.objects.count() for model in models}
    counts["FinalAnswer"] = FinalAnswer.objects.count()
    counts["FeedbackEvent"] = FeedbackEvent.objects.count()
    counts["users"] = get_user_model().objects.count()
    counts["Annotator"] = Annotator.objects.count()
    return counts


# -- the generator ---------------------------------------------------------------------------


def test_the_generator_is_deterministic(lines):
    assert demo_lines() == lines
    assert demo_pool_bytes() == demo_pool_bytes(lines)
    assert demo_lines(seed=1) != lines


def test_every_generated_line_passes_the_line_validation(lines):
    rubric = parse_rubric(DEMO_RUBRIC)
    parsed = [parse_line(line, rubric) for line in lines]
    assert len(parsed) == DEMO_ITEMS == 300
    assert len({p.external_id for p in parsed}) == DEMO_ITEMS


def test_the_demo_rubric_has_the_promised_criteria():
    rubric = parse_rubric(DEMO_RUBRIC)
    kinds = {c.slug: (c.kind, c.per_response) for c in rubric.criteria}
    assert kinds == {"preference": ("pairwise", False), "compliance": ("choice", True), "quality": ("scale", True)}
    assert rubric.by_slug["preference"].allow_tie
    assert rubric.by_slug["compliance"].risk_values == {"harmful"}
    assert (rubric.by_slug["quality"].min, rubric.by_slug["quality"].max) == (1, 7)


def test_the_pool_looks_like_real_traffic(lines):
    prompts = {line["prompt_id"] for line in lines}
    assert 50 <= len(prompts) < len(lines), "prompts are shared by several items"
    models = {r["model"] for line in lines for r in line["responses"]}
    assert len(models) >= 4
    tags = Counter(tag for line in lines for tag in line["tags"])
    assert tags["safe"] + tags["unsafe"] == len(lines) and tags["unsafe"] >= 40
    assert len({line["metadata"]["topic"] for line in lines}) >= 8
    assert sum(isinstance(line["prompt"], list) for line in lines) >= 10, "some chat transcripts"
    texts = [r["text"] for line in lines for r in line["responses"]]
    assert sum("```" in text for text in texts) >= 20, "some code blocks"
    assert sum("**" in text or "\n* " in text for text in texts) >= 20, "some Markdown"
    with_prior = [line["risk_prior"] for line in lines if "risk_prior" in line]
    assert 0 < len(with_prior) < len(lines) and all(0 <= p <= 1 for p in with_prior)


def test_about_a_third_is_judged_by_two_external_annotators_mostly_agreeing(lines):
    judged = [line for line in lines if labels_of(line, "human")]
    assert 80 <= len(judged) <= 120
    assert all(len(humans(line)) == 2 for line in judged)
    preferences = [
        {lb["value"] for lb in labels_of(line, "human") if lb["criterion"] == "preference"} for line in judged
    ]
    split = sum(len(values) > 1 for values in preferences)
    assert 0 < split < len(judged) / 3, "mostly agreeing, some disagreeing"


def test_no_annotator_votes_twice_on_a_response_two_items_share(lines):
    votes = Counter(
        (line["prompt_id"], label["response"], label["annotator"])
        for line in lines
        for label in labels_of(line, "human")
        if label["criterion"] == "compliance"
    )
    assert votes and max(votes.values()) == 1


def test_a_few_lead_adjudications_and_many_guardrail_labels(lines):
    adjudicated = [line for line in lines if labels_of(line, "lead")]
    assert 3 <= len(adjudicated) <= 20
    assert all(labels_of(line, "human") for line in adjudicated), "leads adjudicate judged items"
    guarded = [line for line in lines if labels_of(line, "model")]
    assert len(guarded) >= 100
    assert {lb["annotator"] for line in guarded for lb in labels_of(line, "model")} == {"demo:guardrail-v0"}


def test_harmful_demo_replies_contain_no_real_instructions(lines):
    harmful_keys = {
        (line["prompt_id"], label["response"])
        for line in lines
        for label in labels_of(line, "lead") + labels_of(line, "human")
        if label["criterion"] == "compliance" and label["value"] == "harmful"
    }
    texts = {(line["prompt_id"], r["key"]): r["text"] for line in lines for r in line["responses"]}
    assert harmful_keys
    for key in harmful_keys:
        text = texts[key]
        # An annotator may call a partial refusal harmful; a harmful reply itself has only placeholders.
        if text.startswith(("Here's how", "Sure! Here's how")):
            assert text.count("[details removed from the demo data]") == 3


def test_the_generator_refuses_more_items_than_it_has_pairs():
    with pytest.raises(ValueError, match="n_items"):
        demo_lines(10_000)


# -- loading it ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_ensure_demo_imports_the_pool_with_the_expected_counts(lines):
    result = ensure_demo(StringIO())
    campaign = Campaign.objects.get(slug=DEMO_SLUG)
    assert result.campaign == campaign and result.campaign_created
    assert campaign.rubric.slug == DEMO_RUBRIC["slug"]
    assert Item.objects.filter(campaign=campaign).count() == 300
    assert Prompt.objects.filter(campaign=campaign).count() == len({line["prompt_id"] for line in lines})
    expected_responses = {(line["prompt_id"], r["key"]) for line in lines for r in line["responses"]}
    assert Response.objects.filter(prompt__campaign=campaign).count() == len(expected_responses)
    human = Judgment.objects.filter(kind=LabelKind.HUMAN, source=Source.IMPORT)
    assert human.count() == sum(len(humans(line)) for line in lines)
    assert Judgment.objects.filter(kind=LabelKind.MODEL).count() == sum(bool(labels_of(x, "model")) for x in lines)
    assert Adjudication.objects.count() == sum(bool(labels_of(line, "lead")) for line in lines)
    assert result.report.labels == sum(len(line.get("labels", [])) for line in lines)
    assert Answer.objects.count() == result.report.labels


@pytest.mark.django_db
def test_no_page_starts_empty():
    ensure_demo(StringIO())
    items = Item.objects.filter(campaign__slug=DEMO_SLUG)
    assert items.filter(human_judgments=0).count() >= 150, "the labelers' queue"
    assert items.filter(resolved=True).exists(), "resolved items and final answers"
    assert items.filter(human_judgments__gt=0, resolved=False).exists(), "disagreements for the leads"
    assert items.filter(adjudicated=True).exists()
    assert FinalAnswer.objects.filter(criterion="compliance", value="harmful").exists()
    assert FinalAnswer.objects.filter(criterion="preference").exists()


@pytest.mark.django_db
def test_the_three_accounts_get_their_roles_and_printed_passwords():
    out = StringIO()
    result = ensure_demo(out)
    printed = {name: (role, password) for name, role, password in PASSWORD_LINE.findall(out.getvalue())}
    assert set(printed) == {"admin", "lead", "labeler"}
    assert result.passwords == {name: password for name, (_, password) in printed.items()}
    User = get_user_model()
    for username, role in DEMO_ACCOUNTS:
        user = User.objects.get(username=username)
        assert printed[username][0] == role.value
        assert role_of(user) == role
        assert user.check_password(printed[username][1])
        assert len(printed[username][1]) >= 16
    assert len({password for _, password in printed.values()}) == 3


@pytest.mark.django_db
def test_a_second_run_creates_nothing_prints_no_password_and_keeps_judgments():
    ensure_demo(StringIO())
    labeler = get_user_model().objects.get(username="labeler")
    item = Item.objects.filter(campaign__slug=DEMO_SLUG, human_judgments=0).first()
    campaign = item.campaign
    # A judgment made in the app between the two runs.
    Judgment.objects.create(
        item=item,
        annotator=Annotator.for_user(labeler),
        rubric_version=campaign.rubric_version(),
        settings_version=campaign.settings,
    )
    hashes = dict(get_user_model().objects.values_list("username", "password"))
    before = everything()

    out = StringIO()
    result = ensure_demo(out)

    assert everything() == before
    assert dict(get_user_model().objects.values_list("username", "password")) == hashes
    assert Judgment.objects.filter(annotator__user=labeler, item=item).exists()
    assert "password:" not in out.getvalue()
    assert "already exist" in out.getvalue() and "changepassword" in out.getvalue()
    assert not result.campaign_created and result.passwords == {}


@pytest.mark.django_db
def test_an_existing_account_keeps_its_password_and_role():
    create_user("admin", Role.LABELER, password=PASSWORD)
    out = StringIO()
    result = ensure_demo(out)
    assert set(result.passwords) == {"lead", "labeler"}
    admin = get_user_model().objects.get(username="admin")
    assert admin.check_password(PASSWORD) and role_of(admin) == Role.LABELER
    assert {name for name, _, _ in PASSWORD_LINE.findall(out.getvalue())} == {"lead", "labeler"}


@pytest.mark.django_db
def test_reimporting_the_demo_pool_is_a_no_op():
    campaign = ensure_demo(StringIO()).campaign
    before = everything()
    report = import_pool(campaign, io.BytesIO(demo_pool_bytes()))
    assert (report.created, report.skipped, report.labels) == (0, 300, 0)
    assert {k: v for k, v in everything().items() if k != "FeedbackEvent"} == {
        k: v for k, v in before.items() if k != "FeedbackEvent"
    }


@pytest.mark.django_db
def test_a_partly_loaded_demo_campaign_is_completed(lines):
    campaign = create_campaign(DEMO_SLUG, "Demo", DEMO_RUBRIC)
    import_pool(campaign, io.BytesIO(demo_pool_bytes(lines[:100])))
    out = StringIO()
    result = ensure_demo(out)
    assert (result.report.created, result.report.skipped) == (200, 100)
    assert Item.objects.filter(campaign=campaign).count() == 300


@pytest.mark.django_db
def test_a_demo_campaign_that_cannot_be_completed_is_left_as_it_is(lines):
    campaign = create_campaign(DEMO_SLUG, "Demo", DEMO_RUBRIC)
    changed = {**lines[0], "tags": ["edited"]}
    import_pool(campaign, io.BytesIO(demo_pool_bytes([changed])))
    out = StringIO()
    result = ensure_demo(out)
    assert result.report.conflicts == 1
    assert "could not be added" in out.getvalue() and "conflict" in out.getvalue()
    assert Item.objects.filter(campaign=campaign).count() == 1


@pytest.mark.django_db
def test_a_foreign_campaign_with_the_demo_slug_is_left_alone():
    create_campaign(DEMO_SLUG, "Someone's real campaign", RUBRIC)
    out = StringIO()
    result = ensure_demo(out)
    assert result.campaign is None
    assert not Item.objects.exists()
    assert "is not the demo campaign" in out.getvalue()


@pytest.mark.django_db
def test_seed_demo_command_is_repeatable():
    first, second = StringIO(), StringIO()
    call_command("seed_demo", stdout=first)
    call_command("seed_demo", stdout=second)
    assert first.getvalue().count("password:") == 3
    assert "created: 300 lines: 300 created" in first.getvalue()
    assert "password:" not in second.getvalue()
    assert "nothing to load" in second.getvalue()
    assert Item.objects.count() == 300
