"""deploy.yaml: seed 003 §6's keys load as written, defaults are the local target, and every
error names its key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from council.deploy_config import (
    STEPS,
    DeployConfig,
    load_deploy_config,
    parse_deploy_config,
)
from council.errors import ConfigError

SEED = """\
deployment:
  # Code Generation Control
  regenerate_main: true
  regenerate_service: true
  regenerate_test: false

  # Deployment Control
  rebuild_base_env: false
  rebuild_container: true
  rerun_tests: true
  skip_provision: false

  # AI Involvement
  ai_generate_code: true
  ai_analyze_errors: true
  ai_create_commits: false
  ai_suggest_fixes: true

  # Retry Strategy
  max_retries: 4
  retry_on_provision_fail: true
  retry_on_test_fail: true
  retry_delay_seconds: 5
  exponential_backoff: true

  # Provisioner Integration
  provision_mode: AZURE
  skip_steps: [generate_main]

  # GitHub Action Parameters
  github:
    wait_for_completion: true
    poll_interval_seconds: 20
    max_wait_minutes: 10
    fetch_logs_on_failure: false
"""


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_deploy_config(text)
    assert info.value.exit_code == 2
    return info.value.message


def test_the_seed_file_loads_as_written():
    config = parse_deploy_config(SEED)
    d = config.deployment
    assert (d.regenerate_test, d.ai_create_commits, d.max_retries) == (False, False, 4)
    assert d.skip_steps == ["generate_main"]
    assert (d.github.poll_interval_seconds, d.github.max_wait_minutes) == (20, 10)
    assert d.github.fetch_logs_on_failure is False
    assert config.resolved_target == "azure"  # the seed's provision_mode
    assert config.iac == "bicep"


def test_defaults_are_the_local_target_and_the_seed_values(tmp_path: Path):
    config = load_deploy_config(tmp_path / "deploy.yaml")  # no file: defaults
    assert config == DeployConfig()
    assert config.resolved_target == "local"
    assert config.health_path == "/health"
    d = config.deployment
    assert (d.max_retries, d.retry_delay_seconds, d.exponential_backoff) == (3, 10, True)
    assert (d.github.poll_interval_seconds, d.github.max_wait_minutes) == (30, 15)
    assert parse_deploy_config("") == DeployConfig()


def test_top_level_keys_and_backoff():
    config = parse_deploy_config(
        "target: local\niac: terraform\napp: app.main:app\nhealth_path: /healthz\n"
        "deployment:\n  retry_delay_seconds: 2\n"
    )
    assert (config.resolved_target, config.iac, config.app) == (
        "local",
        "terraform",
        "app.main:app",
    )
    assert [config.deployment.retry_delay(n) for n in (1, 2, 3)] == [2, 4, 8]
    flat = parse_deploy_config("deployment:\n  retry_delay_seconds: 2\n  exponential_backoff: no\n")
    assert [flat.deployment.retry_delay(n) for n in (1, 3)] == [2, 2]


def test_errors_name_the_key_and_its_line():
    text = SEED.replace("max_retries: 4", "max_retries: many").replace(
        "max_wait_minutes: 10", "max_wait_minutes: -1"
    )
    message = _error(text)
    assert "deploy.yaml:20: deployment.max_retries: Input should be a valid integer" in message
    assert (
        "deploy.yaml:34: deployment.github.max_wait_minutes: Input should be greater than 0"
        in message
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("iac: pulumi\n", "deploy.yaml:1: iac: Input should be 'bicep' or 'terraform'"),
        ("target: local\nsurprise: 1\n", "deploy.yaml:2: surprise: unknown key"),
        ("deployment:\n  rebuild_everything: true\n",
         "deploy.yaml:2: deployment.rebuild_everything: unknown key"),
        ("deployment:\n  skip_steps:\n    - deploy_moon\n",
         "deploy.yaml:2: deployment.skip_steps: unknown step(s) deploy_moon"),
        ("health_path: health\n", "deploy.yaml:1: health_path: String should match pattern"),
        ("app: 'app/main.py'\n", "deploy.yaml:1: app: String should match pattern"),
        ("target: local\ndeployment:\n  provision_mode: AZURE\n",
         "deploy.yaml:3: deployment.provision_mode: target is 'local' but"),
        ("target: [local\n", "deploy.yaml:2: invalid YAML"),
        ("- local\n", "deploy.yaml:1: expected a mapping"),
    ],
)  # fmt: skip
def test_bad_values_are_reported_with_their_line(text: str, expected: str):
    assert expected in _error(text)


def test_every_step_name_is_accepted_and_the_file_is_read_from_disk(tmp_path: Path):
    path = tmp_path / "deploy.yaml"
    path.write_text("deployment:\n  skip_steps: [" + ", ".join(STEPS) + "]\n", encoding="utf-8")
    assert load_deploy_config(path).deployment.skip_steps == list(STEPS)
    path.write_text("deployment:\n  max_retries: 99\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{path}:2: deployment.max_retries"):
        load_deploy_config(path)


def test_service_environment_values_and_passed_names():
    config = parse_deploy_config("env:\n  LOG_LEVEL: debug\npass_env: [API_TOKEN, UNSET_ONE]\n")
    assert config.service_env({"API_TOKEN": "t0k", "OTHER": "x"}) == {
        "LOG_LEVEL": "debug",
        "API_TOKEN": "t0k",
    }
    with pytest.raises(ConfigError, match=r"deploy.yaml:2: pass_env: not an environment variable"):
        parse_deploy_config("env: {}\npass_env: ['A-B']\n")


def test_settings_without_effect_are_named_and_switches_skip_their_steps():
    seed = parse_deploy_config(SEED)
    idle = seed.without_effect()
    assert "deployment.regenerate_test" in idle and "deployment.ai_create_commits" in idle
    assert "skip_steps: generate_main" in idle  # no separate step to skip here
    assert parse_deploy_config("target: local\n").without_effect() == []
    config = parse_deploy_config(
        "deployment:\n  skip_provision: true\n  ai_generate_code: false\n"
        "  ai_suggest_fixes: false\n  skip_steps: [analyze_errors]\n"
    )
    assert [config.skips(s) for s in ("provision", "generate_service", "apply_fix")] == [True] * 3
    assert config.skips("analyze_errors") and not config.skips("build_container")
    assert config.without_effect() == []  # each of these is acted on
    assert parse_deploy_config("deployment:\n  regenerate_service: false\n").skips(
        "generate_service"
    )
