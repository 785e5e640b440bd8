"""Dataset versions: preference and full JSONL, filters, hashes, immutability, the command."""

import hashlib
from io import StringIO

import orjson
import pytest
from django.core.management import CommandError, call_command

from reviews.campaigns.setup import create_campaign
from reviews.core.exceptions import DomainError, ImmutableError
from reviews.core.roles import Role
from reviews.data.importer import import_pool
from reviews.datasets.export import DatasetUnavailable, Filters, agreement, create_dataset, dataset_file, stored_path
from reviews.labeling import queue
from reviews.leads import final_answers
from reviews.models import Adjudication, Annotator, Answer, DatasetVersion, FeedbackEvent, FinalAnswer, Item
from reviews.people.accounts import create_user
from tests.conftest import PASSWORD, RUBRIC, join, jsonl, pool_line

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def dataset_dir(settings, tmp_path):
    settings.REVIEWS_DATASET_DIR = tmp_path / "datasets"


@pytest.fixture
def people(campaign):
    return join(campaign, *(create_user(f"lab{i}", Role.LABELER, password=PASSWORD) for i in range(2)))


def judge(user, campaign, pick, *, compliance="full_compliance", confidence=4, rationale=""):
    """Claim the next item and answer it, preferring response `pick` ('a', 'b' or 'tie')."""
    claim = queue.claim_next(campaign, user)
    assert claim.state == "item"
    item = claim.assignment.item
    queue.submit(
        user,
        claim.assignment.uid,
        [
            ("preference", None, pick),
            ("compliance", item.response_a_id, compliance),
            ("compliance", item.response_b_id, "full_compliance"),
            ("quality", item.response_a_id, "5"),
            ("quality", item.response_b_id, "4"),
        ],
        confidence=confidence,
        rationale=rationale,
        time_spent_ms=1000,
    )
    return item


def adjudicate(item, lead_user, answers, *, when=None):
    """A lead's adjudication as the escalation pages store it."""
    adjudication = Adjudication.objects.create(
        item=item,
        lead=Annotator.for_user(lead_user),
        rationale="policy says so",
        rubric_version=item.campaign.rubric_version(),
        settings_version=item.campaign.settings,
        **({"created_at": when} if when else {}),
    )
    Answer.objects.bulk_create(
        Answer(adjudication=adjudication, criterion=c, response_id=r, value=v) for c, r, v in answers
    )
    final_answers.refresh(item.campaign, [item.id])
    return adjudication


def lines(version) -> list[dict]:
    return [orjson.loads(line) for line in dataset_file(version).read_bytes().splitlines()]


@pytest.fixture
def judged(campaign, people):
    """item-0: both prefer a; item-1: a tie; item-2: split (a vs b); item-3: one judgment; item-4: unjudged."""
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    import_pool(
        campaign,
        jsonl(
            pool_line("item-0", tags=["safe", "homonyms"]),
            pool_line("item-1"),
            pool_line("item-2", tags=["unsafe"], prompt=chat),
            pool_line("item-3"),
            pool_line("item-4"),
        ),
    )
    one, two = people
    for pick_one, pick_two in (("a", "a"), ("tie", "tie"), ("a", "b")):
        judge(one, campaign, pick_one)
        judge(two, campaign, pick_two)
    judge(one, campaign, "b")
    return campaign


def test_agreement_is_the_mean_share_of_the_most_common_answer():
    from collections import Counter

    assert agreement([Counter(a=2), Counter(x=1, y=1)], 2) == 0.75
    assert agreement([Counter(a=1)], 1) is None
    assert agreement([], 0) is None


class TestPreference:
    def test_decided_pairs_become_chosen_and_rejected_with_provenance(self, judged, admin):
        version = create_dataset(judged, "preference", Filters(), user=admin)
        [line] = lines(version)
        item = Item.objects.get(external_id="item-0")
        assert line == {
            "prompt": "Question item-0?",
            "chosen": item.response_a.text,
            "rejected": item.response_b.text,
            "id": "item-0",
            "rubric_version": 1,
            "n_judgments": 2,
            "agreement": 1.0,
            "adjudicated": False,
            "chosen_model": "model-a",
            "rejected_model": "model-b",
        }
        assert version.counts == {
            "excluded_items_left_out": 0,
            "items": 5,
            "lines": 1,
            "ties_left_out": 1,
            "unresolved_left_out": 3,
        }
        assert version.rubric_versions == [1]

    def test_an_adjudicated_pair_is_marked_and_chat_prompts_stay_message_lists(self, judged, admin, lead):
        item = Item.objects.get(external_id="item-2")
        adjudicate(item, lead, [("preference", None, "b")])
        version = create_dataset(judged, "preference", Filters(adjudicated_only=True), user=admin)
        [line] = lines(version)
        assert line["id"] == "item-2" and line["adjudicated"] is True
        assert line["chosen"] == item.response_b.text and line["agreement"] == 0.9  # preference split, rest unanimous
        assert line["prompt"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]

    def test_filters_narrow_and_say_what_they_left_out(self, judged, admin, lead):
        adjudicate(Item.objects.get(external_id="item-2"), lead, [("preference", None, "b")])
        by_agreement = create_dataset(judged, "preference", Filters(min_agreement=0.95))
        assert [ln["id"] for ln in lines(by_agreement)] == ["item-0"]
        assert by_agreement.counts["left_out_by_agreement"] == 3  # item-2 (0.9), item-3 and item-4 (no agreement)
        by_tag = create_dataset(judged, "preference", Filters(tags=("unsafe",)))
        assert [ln["id"] for ln in lines(by_tag)] == ["item-2"]
        assert by_tag.counts["left_out_by_tags"] == 4
        both_tags = create_dataset(judged, "full", Filters(tags=("safe", "homonyms")))
        assert [ln["external_id"] for ln in lines(both_tags)] == ["item-0"]

    def test_a_rubric_without_a_pairwise_criterion_cannot_give_pairs(self, db):
        rubric = {**RUBRIC, "slug": "no-pairs", "criteria": RUBRIC["criteria"][1:]}
        campaign = create_campaign("nopairs", "No pairs", rubric)
        with pytest.raises(DomainError, match="no pairwise criterion"):
            create_dataset(campaign, "preference", Filters())
        assert not DatasetVersion.objects.exists()


class TestFull:
    def test_app_judgments_and_adjudications_export_as_labels_and_import_back(self, judged, lead, people):
        item = Item.objects.get(external_id="item-2")
        adjudicate(item, lead, [("preference", None, "a")])
        adjudicate(item, lead, [("preference", None, "b")])  # the later one is in force
        version = create_dataset(judged, "full", Filters())
        exported = {ln["external_id"]: ln for ln in lines(version)}
        assert set(exported) == {f"item-{n}" for n in range(5)}
        assert "labels" not in exported["item-4"]
        lead_labels = [lb for lb in exported["item-2"]["labels"] if lb["kind"] == "lead"]
        assert [(lb["annotator"], lb["value"]) for lb in lead_labels] == [("leo", "b")]
        assert version.counts["superseded_adjudications_left_out"] == 1
        first = exported["item-0"]["labels"][0]
        assert first["annotator"] == "lab0" and first["kind"] == "human"
        assert first["confidence"] == 0.75 and first["created_at"]
        quality = [lb for lb in exported["item-0"]["labels"] if lb["criterion"] == "quality"]
        assert {lb["value"] for lb in quality} == {5, 4}  # scale answers are integers again

        copy = create_campaign("copy", "Copy", RUBRIC)
        import_pool(copy, dataset_file(version).open("rb"))

        def finals(campaign):
            return {
                (f.criterion, f.item.external_id if f.item_id else (f.response.prompt.external_id, f.response.key)): (
                    f.value,
                    f.basis,
                )
                for f in FinalAnswer.objects.filter(campaign=campaign).select_related("item", "response__prompt")
            }

        assert finals(copy) == finals(judged)
        assert len(finals(judged)) > 5

    def test_gold_items_carry_their_known_answers_in_the_import_format(self, judged):
        item = Item.objects.get(external_id="item-4")
        Item.objects.filter(pk=item.pk).update(
            is_gold=True, gold_answers={"preference": "b", "compliance": {"a": "full_refusal"}, "quality": {"b": 3}}
        )
        exported = {ln["external_id"]: ln for ln in lines(create_dataset(judged, "full", Filters()))}
        assert exported["item-4"]["gold"] == [
            {"criterion": "preference", "value": "b"},
            {"criterion": "compliance", "response": "a", "value": "full_refusal"},
            {"criterion": "quality", "response": "b", "value": 3},
        ]
        assert "gold" not in exported["item-3"]

    def test_excluded_items_are_left_out(self, judged):
        Item.objects.filter(external_id="item-4").update(excluded=True)
        version = create_dataset(judged, "full", Filters())
        assert version.counts["items"] == 4 and version.counts["excluded_items_left_out"] == 1


class TestVersions:
    def test_the_hash_is_the_sha256_of_the_stored_bytes_and_an_event_records_it(self, judged, admin):
        version = create_dataset(judged, "full", Filters(min_agreement=0.5), user=admin)
        data = dataset_file(version).read_bytes()
        assert hashlib.sha256(data).hexdigest() == version.content_hash and len(data) == version.size_bytes
        event = FeedbackEvent.objects.get(action=FeedbackEvent.Action.DATASET_CREATED)
        assert event.item is None and event.actor == admin and event.role == "admin"
        assert event.feedback["dataset"] == str(version.uid) and event.feedback["content_hash"] == version.content_hash
        assert event.rubric_version == judged.rubric_version() and event.settings_version == judged.settings
        assert version.filters == {"rubric_version": None, "adjudicated_only": False, "min_agreement": 0.5, "tags": []}

    def test_a_version_cannot_be_changed_or_deleted(self, judged):
        version = create_dataset(judged, "full", Filters())
        version.content_hash = "0" * 64
        with pytest.raises(ImmutableError):
            version.save()
        with pytest.raises(ImmutableError):
            version.delete()
        with pytest.raises(ImmutableError):
            DatasetVersion.objects.filter(pk=version.pk).update(size_bytes=1)

    def test_a_lost_file_is_rebuilt_only_while_the_bytes_would_be_the_same(self, judged, people):
        version = create_dataset(judged, "full", Filters())
        path = stored_path(version.content_hash)
        original = path.read_bytes()
        path.unlink()
        assert dataset_file(version).read_bytes() == original
        path.write_bytes(b"tampered\n")
        assert dataset_file(version).read_bytes() == original
        path.unlink()
        judge(people[1], judged, "b")  # the campaign changes: the same filters now give other bytes
        with pytest.raises(DatasetUnavailable, match="changed since"):
            dataset_file(version)

    def test_the_rubric_version_filter_takes_items_judged_only_under_it(self, judged, people, admin):
        judged.rubric.publish({**RUBRIC, "guidelines": "Clearer guidelines."}, user=admin, note="v2")
        judge(people[1], judged, "a")  # item-3's second judgment, under v2
        v1 = create_dataset(judged, "full", Filters(rubric_version=1))
        assert [ln["external_id"] for ln in lines(v1)] == ["item-0", "item-1", "item-2"]
        assert v1.counts["left_out_by_rubric_version"] == 2 and v1.rubric_versions == [1]
        v2 = create_dataset(judged, "full", Filters(rubric_version=2))
        assert v2.counts["lines"] == 0  # item-3 mixes v1 and v2 judgments
        with pytest.raises(DomainError, match="not a published version"):
            create_dataset(judged, "full", Filters(rubric_version=7))


class TestCommand:
    def test_it_creates_the_version_writes_the_bytes_and_prints_id_and_hash(self, judged, tmp_path, admin):
        out = StringIO()
        target = tmp_path / "pref.jsonl"
        call_command(
            "export_dataset",
            "demo",
            "--format",
            "preference",
            "--out",
            str(target),
            "--min-agreement",
            "0.5",
            "--tag",
            "safe",
            "--user",
            "ada",
            stdout=out,
        )
        version = DatasetVersion.objects.get()
        assert f"dataset {version.uid} sha256 {version.content_hash}" in out.getvalue()
        assert hashlib.sha256(target.read_bytes()).hexdigest() == version.content_hash
        assert version.created_by == admin
        assert version.filters == {
            "rubric_version": None,
            "adjudicated_only": False,
            "min_agreement": 0.5,
            "tags": ["safe"],
        }

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--rubric-version", "9"], "not a published version"),
            (["--min-agreement", "1.5"], "between 0 and 1"),
            (["--user", "nobody"], "no user"),
        ],
    )
    def test_bad_options_fail_with_a_reason_and_create_nothing(self, judged, tmp_path, args, message):
        with pytest.raises(CommandError, match=message):
            call_command("export_dataset", "demo", "--format", "full", "--out", str(tmp_path / "x"), *args)
        assert not DatasetVersion.objects.exists()


def test_the_command_can_write_to_stdout(judged):
    out, err = StringIO(), StringIO()
    call_command("export_dataset", "demo", "--format", "preference", "--out", "-", stdout=out, stderr=err)
    version = DatasetVersion.objects.get()
    assert hashlib.sha256(out.getvalue().encode()).hexdigest() == version.content_hash
    assert f"dataset {version.uid} sha256 {version.content_hash}" in err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_export_reads_one_snapshot(campaign):
    """On PostgreSQL the export runs in a REPEATABLE READ transaction of its own; on SQLite it reads as it goes."""
    from django.db import connection

    import_pool(campaign, jsonl(*(pool_line(f"item-{n}") for n in range(3))))
    assert not connection.in_atomic_block
    version = create_dataset(campaign, "full", Filters())
    assert version.counts["lines"] == 3
    assert hashlib.sha256(dataset_file(version).read_bytes()).hexdigest() == version.content_hash
    assert not connection.in_atomic_block
