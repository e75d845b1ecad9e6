"""``docs/api.md`` and the OpenAPI document describe the same routes: every operation the app
serves has its section (or its row in the order commands' table), and nothing is documented
that the app does not serve."""

from __future__ import annotations

import re
from pathlib import Path

from api.http.app import create_app
from ledger.settings import load_settings

DOCS = Path(__file__).parents[2] / "docs" / "api.md"
HEADING = re.compile(r"^### (GET|POST|PATCH|PUT|DELETE) (/\S+)(?: and (/\S+))?", re.MULTILINE)
COMMAND_ROW = re.compile(r"^\| `([a-z/-]+)` \|", re.MULTILINE)


def documented() -> set[tuple[str, str]]:
    text = DOCS.read_text(encoding="utf-8")
    routes = set()
    for method, path, other in HEADING.findall(text):
        routes |= {(method, _shape(p)) for p in (path, other) if p}
    table = text[text.index("| command | body |") :].split("\n\n", 1)[0]
    for command in COMMAND_ROW.findall(table):
        routes.add(("POST", _shape(f"/v1/orders/{{id}}/{command}")))
    return routes


def served(tmp_path: Path) -> set[tuple[str, str]]:
    settings = load_settings(
        LEDGER_DATABASE_URL=f"sqlite:///{tmp_path / 'l.db'}",
        LEDGER_VAR_DIR=str(tmp_path),
        _env_file=None,
    )
    paths = create_app(settings).openapi()["paths"]
    return {(method.upper(), _shape(path)) for path, ops in paths.items() for method in ops}


def _shape(path: str) -> str:
    """``/v1/gigs/{gig_id}`` and ``/v1/gigs/{id}`` alike: ``/v1/gigs/{}``."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def _covers(template: str, path: str) -> bool:
    pattern = re.escape(template).replace(re.escape("{}"), "[^/]+")
    return re.fullmatch(pattern, path) is not None


def test_every_served_route_is_documented(tmp_path: Path) -> None:
    docs = documented()
    missing = {
        (method, template)
        for method, template in served(tmp_path)
        if not any(m == method and _covers(template, path) for m, path in docs)
    }
    assert not missing, f"served but not in docs/api.md: {sorted(missing)}"


def test_nothing_is_documented_that_is_not_served(tmp_path: Path) -> None:
    app = served(tmp_path)
    extra = {
        (method, path)
        for method, path in documented()
        if not any(m == method and _covers(template, path) for m, template in app)
    }
    assert not extra, f"in docs/api.md but not served: {sorted(extra)}"
