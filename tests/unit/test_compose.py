"""docker-compose.yml is configured only through variables the settings really read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from api.cli import build_parser
from ledger.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _settings_variables() -> set[str]:
    return {str(field.validation_alias) for field in Settings.model_fields.values()}


def test_services_are_postgres_api_and_worker() -> None:
    assert set(_compose()["services"]) == {"postgres", "api", "worker"}


def test_postgres_has_a_pg_isready_healthcheck_that_the_others_wait_for() -> None:
    services = _compose()["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_api_serves_and_worker_works_with_commands_the_cli_has() -> None:
    services = _compose()["services"]
    assert services["api"]["command"][:2] == ["ledger", "serve"]
    assert services["worker"]["command"] == ["ledger", "worker"]
    parser = build_parser()
    for name in ("api", "worker"):
        parser.parse_args(services[name]["command"][1:])  # exits on an unknown command


def test_every_variable_is_one_the_settings_read() -> None:
    known = _settings_variables()
    for name in ("api", "worker"):
        variables = set(_compose()["services"][name]["environment"])
        assert variables <= known, f"{name} sets variables no setting reads: {variables - known}"


def test_every_setting_that_matters_in_production_is_set() -> None:
    variables = set(_compose()["services"]["api"]["environment"])
    local_only = {
        "LEDGER_VAR_DIR",
        "LEDGER_DB_CONNECT_TIMEOUT",
        "LEDGER_DB_LOCK_TIMEOUT",
        "LEDGER_SANDBOX_ON_PUBLIC_HOST",  # only with the sandbox, which production refuses
    }
    assert _settings_variables() - local_only <= variables
