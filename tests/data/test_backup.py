"""dump_campaign / restore_campaign: a campaign restored into an empty database has the same rows, final answers
and feedback log; a restore that cannot complete writes nothing."""

import json
import os
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from reviews.campaigns.status import campaign_status
from reviews.core.roles import Role
from reviews.data.backup import FORMAT, BackupError, _open, dump_campaign, restore_campaign
from reviews.data.importer import import_pool
from reviews.labeling import queue
from reviews.models import Campaign, FeedbackEvent, Item, Judgment
from reviews.people.accounts import create_user
from scoring.jobs import rescore_in_foreground
from tests.conftest import PASSWORD, join, jsonl, pool_line
from tests.labeling.test_queue import judge
from tests.processes import manage_run

pytestmark = pytest.mark.django_db


def labels(annotator, kind, preference="a", compliance=("full_compliance", "full_refusal")):
    out = [{"annotator": annotator, "kind": kind, "criterion": "preference", "value": preference}]
    for key, value in zip("ab", compliance, strict=True):
        out.append({"annotator": annotator, "kind": kind, "criterion": "compliance", "response": key, "value": value})
        out.append({"annotator": annotator, "kind": kind, "criterion": "quality", "response": key, "value": 4})
    return out


@pytest.fixture
def busy(campaign, labeler, lead):
    """A campaign with a history: imported labels (human, model, lead), judgments, a skip, an escalation,
    a settings change, a scoring run and text in several scripts."""
    lines = [pool_line(f"item-{n}", prompt=f"Question {n} — ünïcödé 中文 \U0001f600?") for n in range(12)]
    lines[0]["labels"] = labels("ann-1", "human") + labels("ann-2", "human")
    lines[1]["labels"] = labels("ann-1", "human") + labels("ann-2", "human", preference="b")
    lines[2]["labels"] = labels("ann-1", "human") + labels("lead-x", "lead", preference="b")
    lines[3]["labels"] = labels("gpt-judge", "model")
    import_pool(campaign, jsonl(*lines))
    other = create_user("lars", Role.LABELER, password=PASSWORD)
    join(campaign, other)
    campaign.update_settings(user=lead, note="k stays, lease shorter", lease_minutes=10)
    for _ in range(3):
        judge(labeler, campaign)
        judge(other, campaign, preference="right")
    lease = queue.claim_next(campaign, labeler).assignment
    queue.skip(labeler, lease.uid, time_spent_ms=900)
    lease = queue.claim_next(campaign, labeler).assignment
    queue.escalate(labeler, lease.uid, reason="harmful", comment="dangerous", time_spent_ms=1500)
    rescore_in_foreground(campaign, trigger="test")
    judge(labeler, campaign)
    queue.claim_next(campaign, other)  # a live lease travels too
    campaign.refresh_from_db()
    return campaign


def read_dump(path: Path) -> tuple[dict, list[dict], dict[str, list[dict]]]:
    with _open(path, "r") as handle:
        lines = [json.loads(line) for line in handle]
    header, users, tables = lines[0], [], {}
    for entry in lines[1:]:
        if "user" in entry:
            users.append(entry["user"])
        else:
            tables.setdefault(entry["table"], []).append(entry["row"])
    return header, users, tables


def normalized(path: Path) -> dict[str, list[dict]]:
    """The dump with database ids replaced by positions (a row's place in its table) and users by username,
    so that dumps of the same campaign from two databases compare equal."""
    from reviews.data.backup import MODELS, _columns

    _, users, tables = read_dump(path)
    username = {u["id"]: u["username"] for u in users}
    position = {label: {row["id"]: n for n, row in enumerate(rows)} for label, rows in tables.items()}
    out = {}
    for label, rows in tables.items():
        model = MODELS[label]
        relations = {f.attname: f.related_model for f in _columns(model) if f.is_relation}
        out[label] = []
        for row in rows:
            clean = {}
            for key, value in row.items():
                if key == "id" or key == "features_version":
                    continue
                if key in relations and value is not None:
                    target = relations[key]
                    value = (
                        username[value]
                        if target._meta.label_lower not in position
                        else position[target._meta.label_lower][value]
                    )
                clean[key] = value
            out[label].append(clean)
    return out


def feedback_log(campaign: Campaign) -> list[tuple]:
    return [
        (e.action, e.role, e.actor.username if e.actor else None, e.item.external_id if e.item else None, e.feedback)
        for e in FeedbackEvent.objects.filter(campaign=campaign).select_related("actor", "item").order_by("id")
    ]


@pytest.mark.slow
def test_a_campaign_restored_into_an_empty_database_is_identical(busy, tmp_path):
    dump = tmp_path / "busy.jsonl.gz"
    counts = dump_campaign(busy, dump)
    assert counts["reviews.feedbackevent"] == FeedbackEvent.objects.filter(campaign=busy).count() > 10
    assert counts["reviews.itemscore"] == 12 and counts["reviews.scoringrun"] == 1
    status = campaign_status(busy)
    assert status["final_answers"], "the fixture should have final answers"

    # A fresh SQLite database, migrated, in other processes: restore, then report and dump again.
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'restored.sqlite3'}",
        "REVIEWS_VAR_DIR": str(tmp_path / "var"),
    }
    env.pop("REDIS_URL", None)
    for args in (
        ("migrate", "--no-input", "-v", "0"),
        ("restore_campaign", str(dump)),
        ("dump_campaign", busy.slug, "--out", str(tmp_path / "again.jsonl")),
    ):
        result = manage_run(*args, env=env, timeout=300)
        assert result.returncode == 0, f"{args}: {result.stderr}"
    result = manage_run("campaign_status", busy.slug, "--json", env=env)
    assert result.returncode == 0, result.stderr
    restored_status = json.loads(result.stdout)

    assert restored_status["final_answers"] == json.loads(json.dumps(status["final_answers"]))
    assert _same_but_times(restored_status, status)
    original, again = normalized(dump), normalized(tmp_path / "again.jsonl")
    for a, b in zip(original["reviews.feedbackevent"], again["reviews.feedbackevent"], strict=True):
        assert a == b, {k: (a[k], b.get(k)) for k in a if a[k] != b.get(k)}
    assert original["reviews.finalanswer"] == again["reviews.finalanswer"]
    assert original == again  # and every other row


def _same_but_times(restored: dict, status: dict) -> bool:
    """campaign_status prints times through json.dumps(default=str) in the command; compare without them."""
    a = {k: v for k, v in restored.items() if k != "last_scoring_run"}
    b = json.loads(json.dumps({k: v for k, v in status.items() if k != "last_scoring_run"}, default=str))
    return a == b


def test_the_dump_names_users_and_leaves_out_secrets(busy, tmp_path, labeler):
    path = tmp_path / "busy.jsonl"
    dump_campaign(busy, path)
    header, users, tables = read_dump(path)
    assert header["format"] == FORMAT and header["campaign"] == busy.slug
    assert {u["username"] for u in users} >= {"lena", "lars", "leo"}
    assert {u["role"] for u in users if u["username"] == "lena"} == {"labeler"}
    text = path.read_text()
    assert "password" not in text and labeler.password not in text
    assert "reviews.apitoken" not in tables
    assert all("features" not in row for row in tables["reviews.prompt"])


def test_a_restore_over_an_existing_campaign_writes_nothing(busy, tmp_path):
    path = tmp_path / "busy.jsonl"
    dump_campaign(busy, path)
    before = (Campaign.objects.count(), Item.objects.count(), Judgment.objects.count(), FeedbackEvent.objects.count())
    with pytest.raises(BackupError, match="already exists here"):
        restore_campaign(path)
    # Under another slug, the lease and escalation ids collide with the originals: refused, all or nothing.
    with pytest.raises(BackupError, match="collide"):
        restore_campaign(path, slug="copy")
    after = (Campaign.objects.count(), Item.objects.count(), Judgment.objects.count(), FeedbackEvent.objects.count())
    assert after == before


def test_a_truncated_or_foreign_file_is_refused_with_a_reason(busy, tmp_path):
    path = tmp_path / "busy.jsonl"
    dump_campaign(busy, path)
    lines = path.read_text().splitlines()
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    with pytest.raises(BackupError):
        restore_campaign(truncated, slug="fresh")
    assert not Campaign.objects.filter(slug="fresh").exists()
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text('{"model": "auth.user"}\n')
    with pytest.raises(BackupError, match="not a campaign dump"):
        restore_campaign(foreign)
    with pytest.raises(CommandError, match="no file"):
        call_command("restore_campaign", str(tmp_path / "missing.jsonl"))


def test_the_commands_say_what_they_did(busy, tmp_path, capsys):
    out = tmp_path / "x.jsonl.gz"
    call_command("dump_campaign", busy.slug, "--out", str(out))
    assert f"written to {out}" in capsys.readouterr().out
    assert out.read_bytes()[:2] == b"\x1f\x8b"  # gzipped
    with pytest.raises(CommandError, match="no campaign"):
        call_command("dump_campaign", "nope", "--out", str(out))


def test_times_keep_their_microseconds(busy, tmp_path):
    path = tmp_path / "busy.jsonl"
    dump_campaign(busy, path)
    _, _, tables = read_dump(path)
    first = FeedbackEvent.objects.filter(campaign=busy).order_by("id").first()
    assert tables["reviews.feedbackevent"][0]["created_at"] == first.created_at.isoformat()
