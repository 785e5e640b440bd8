"""Settings from the environment: strict helpers, a required secret, and a clean `check --deploy`."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from config.env import ConfigError, env_bool, env_str

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "review.example.org",
    "SECURE_HTTPS": "true",
}


def manage(*args, env: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run manage.py with only `env` (plus PATH and a scratch var dir): nothing leaks in from the test run."""
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "REVIEWS_VAR_DIR": str(tmp_path), **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


# -- the helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["yes", "no", "1", "0", "on", "tru", "t"])
def test_a_boolean_accepts_only_true_or_false(monkeypatch, value):
    monkeypatch.setenv("DEBUG", value)
    with pytest.raises(ConfigError, match="DEBUG must be 'true' or 'false'"):
        env_bool("DEBUG", False)


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("TRUE", True), ("False", False), ("", False)])
def test_a_boolean_reads_true_and_false_in_any_case(monkeypatch, value, expected):
    monkeypatch.setenv("DEBUG", value)
    assert env_bool("DEBUG", False) is expected


def test_a_secret_can_come_from_a_file(monkeypatch, tmp_path):
    path = tmp_path / "secret"
    path.write_text("from-the-file\n")
    monkeypatch.setenv("SECRET_KEY", "from-the-variable")
    monkeypatch.setenv("SECRET_KEY_FILE", str(path))
    assert env_str("SECRET_KEY") == "from-the-file"


def test_an_unreadable_secret_file_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="SECRET_KEY_FILE: cannot read"):
        env_str("SECRET_KEY")


# -- loading the settings ------------------------------------------------------------------


@pytest.mark.slow
def test_the_settings_refuse_a_bad_boolean(tmp_path):
    result = manage("check", env={**PRODUCTION, "DEBUG": "yes"}, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "DEBUG must be 'true' or 'false', got 'yes'" in result.stderr


@pytest.mark.slow
def test_the_settings_refuse_to_load_without_a_secret_key_when_debug_is_off(tmp_path):
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = manage("check", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY (or SECRET_KEY_FILE) is required when DEBUG is off" in result.stderr


@pytest.mark.slow
def test_debug_is_off_unless_asked_for(tmp_path):
    result = manage(
        "shell",
        "--verbosity",
        "0",
        "-c",
        "from django.conf import settings; print(settings.DEBUG)",
        env={"SECRET_KEY": PRODUCTION["SECRET_KEY"]},
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.slow
def test_the_settings_load_without_a_secret_key_in_debug(tmp_path):
    result = manage("check", env={"DEBUG": "true"}, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr


# -- check --deploy ------------------------------------------------------------------------


@pytest.mark.slow
def test_check_deploy_is_clean_with_production_variables(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION, tmp_path=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output
    assert "WARNING" not in output
    assert "?: (security." not in output


@pytest.mark.slow
def test_check_deploy_warns_when_https_is_off(tmp_path):
    """The clean run above means something: without HTTPS the same check fails."""
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env={**PRODUCTION, "SECURE_HTTPS": "false"}, tmp_path=tmp_path
    )
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr
