"""Management commands: help, exit codes and one-line reasons, and their outputs."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from reviews.core.roles import Role, role_of
from reviews.dev.synthetic import write_synthetic
from reviews.models import Campaign, Item
from tests.conftest import RUBRIC, jsonl, pool_line

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ["create_campaign", "import_rubric", "import_pool", "create_user", "campaign_status", "bench_import"]


def manage(*args, env=None, tmp_path=None):
    full_env = {**os.environ, **(env or {})}
    if tmp_path is not None:
        full_env["REVIEWS_VAR_DIR"] = str(tmp_path)
        full_env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    out = StringIO()
    with pytest.raises(SystemExit) as excinfo:
        call_command(command, "--help", stdout=out)
    assert excinfo.value.code == 0


@pytest.mark.slow
def test_a_failing_command_exits_non_zero_with_a_one_line_reason(tmp_path):
    assert manage("migrate", "-v0", tmp_path=tmp_path).returncode == 0
    result = manage("import_pool", "nope", "x.jsonl", tmp_path=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "CommandError: no campaign 'nope' (create it with create_campaign)"


@pytest.fixture
def rubric_file(tmp_path):
    path = tmp_path / "rubric.json"
    path.write_text(json.dumps(RUBRIC))
    return path


@pytest.mark.django_db
def test_create_campaign_with_a_rubric_and_refusals(rubric_file, tmp_path):
    out = StringIO()
    call_command("create_campaign", "c1", "--title", "First", "--rubric", str(rubric_file), stdout=out)
    assert out.getvalue().strip() == "created campaign c1 with rubric test-rubric v1"
    campaign = Campaign.objects.get(slug="c1")
    assert campaign.settings.number == 1
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_campaign", "c1", "--title", "Again")
    with pytest.raises(CommandError, match="is not a slug"):
        call_command("create_campaign", "Bad Slug", "--title", "x")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(CommandError, match="invalid JSON"):
        call_command("create_campaign", "c2", "--title", "x", "--rubric", str(broken))
    assert not Campaign.objects.filter(slug="c2").exists()


@pytest.mark.django_db
def test_import_rubric_publishes_a_new_version_only_when_it_changed(rubric_file, campaign):
    out = StringIO()
    call_command("import_rubric", "demo", str(rubric_file), stdout=out)
    assert "unchanged: rubric test-rubric v1" in out.getvalue()
    rubric_file.write_text(json.dumps({**RUBRIC, "guidelines": "New guidelines."}))
    call_command("import_rubric", "demo", str(rubric_file), "--note", "clarified", stdout=out)
    version = campaign.rubric_version()
    assert (version.number, version.change_note, version.parsed.guidelines) == (2, "clarified", "New guidelines.")
    rubric_file.write_text(json.dumps({**RUBRIC, "criteria": []}))
    with pytest.raises(CommandError, match="criteria: expected a non-empty list"):
        call_command("import_rubric", "demo", str(rubric_file))


@pytest.mark.django_db
def test_import_pool_prints_a_summary_and_lists_errors(campaign, tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_bytes(jsonl(pool_line("a"), pool_line("b")).getvalue())
    out = StringIO()
    call_command("import_pool", "demo", str(good), stdout=out)
    assert out.getvalue().strip() == "2 lines: 2 created, 0 skipped, 0 conflicts, 0 errors, 0 labels stored"

    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(jsonl(pool_line("c"), pool_line("d", prompt="")).getvalue())
    err = StringIO()
    with pytest.raises(CommandError, match="import failed, nothing written: 2 lines: 0 created"):
        call_command("import_pool", "demo", str(bad), stderr=err)
    assert "line 2: prompt: must not be empty" in err.getvalue()
    assert Item.objects.count() == 2


@pytest.mark.django_db
def test_import_pool_shows_a_progress_bar_on_large_files(campaign, tmp_path):
    path = tmp_path / "big.jsonl"
    write_synthetic(path, 2500, labeled_share=0)
    out, err = StringIO(), StringIO()
    call_command("import_pool", "demo", str(path), stdout=out, stderr=err)
    assert "2500/2500" in err.getvalue()
    assert "2500 created" in out.getvalue()


@pytest.mark.django_db
def test_create_user_takes_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("REVIEWS_PASSWORD", "a-long-enough-passphrase")
    call_command("create_user", "rita", "--role", "lead", stdout=StringIO())
    user = get_user_model().objects.get(username="rita")
    assert user.check_password("a-long-enough-passphrase")
    assert role_of(user) == Role.LEAD
    assert user.annotator.name == "rita"
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_user", "rita", "--role", "lead")
    monkeypatch.setenv("REVIEWS_PASSWORD", "123")
    with pytest.raises(CommandError, match="password refused"):
        call_command("create_user", "sam", "--role", "labeler")
    monkeypatch.delenv("REVIEWS_PASSWORD")
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    with pytest.raises(CommandError, match="set REVIEWS_PASSWORD"):
        call_command("create_user", "sam", "--role", "labeler")


@pytest.mark.django_db
def test_campaign_status_json_has_the_documented_keys(campaign):
    from reviews.data.importer import import_pool

    import_pool(
        campaign,
        jsonl(
            pool_line(
                "a",
                labels=[
                    {
                        "annotator": "h1",
                        "kind": "human",
                        "criterion": "compliance",
                        "response": "a",
                        "value": "full_refusal",
                    },
                    {
                        "annotator": "h2",
                        "kind": "human",
                        "criterion": "compliance",
                        "response": "a",
                        "value": "full_refusal",
                    },
                ],
                tags=["safe", "topic"],
            )
        ),
    )
    out = StringIO()
    call_command("campaign_status", "demo", "--json", stdout=out)
    status = json.loads(out.getvalue())
    for key in (
        "items",
        "prompts",
        "responses",
        "human_judgments",
        "model_labels",
        "adjudicated_responses",
        "open_escalations",
        "scored_items",
        "last_scoring_run",
        "final_answers",
    ):
        assert key in status, key
    assert status["last_scoring_run"] is None
    assert status["final_answers"] == {
        "compliance": {"model-a": {"*": {"full_refusal": 1}, "safe": {"full_refusal": 1}, "topic": {"full_refusal": 1}}}
    }
    text = StringIO()
    call_command("campaign_status", "demo", stdout=text)
    assert "model-a: full_refusal 1 (100.0%)" in text.getvalue()


@pytest.mark.slow
def test_bench_import_runs_on_a_throwaway_database_and_prints_its_rate(tmp_path):
    assert manage("migrate", "-v0", tmp_path=tmp_path).returncode == 0
    result = manage("bench_import", "--items", "300", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "300 lines: 300 created" in result.stdout
    assert "sqlite: 300 items in " in result.stdout
    # The benchmark's database is not the one in use.
    status = manage("campaign_status", "bench", tmp_path=tmp_path)
    assert status.returncode == 1
    assert "no campaign 'bench'" in status.stderr
