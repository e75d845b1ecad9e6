"""``check_text`` refuses control and invisible characters (issue 18): a single-line field
(a gig's title, a refund's reference) any of them, a multi-line one (requirements, messages,
reasons) all but newlines and tabs."""

from __future__ import annotations

import pytest

from ledger.domain.values import MAX_TEXT, check_text, hidden_characters
from ledger.errors import ValidationFailed

HIDDEN = {
    "zero width space": "\u200b",
    "zero width joiner": "\u200d",
    "byte order mark": "\ufeff",
    "right-to-left override": "\u202e",
    "left-to-right isolate": "\u2066",
    "soft hyphen": "\u00ad",
    "ANSI escape": "\x1b[31m",
    "bell": "\x07",
    "DEL": "\x7f",
    "C1 control": "\x85",
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
    "lone surrogate": "\ud800",
}
LINE_BREAKS = {"LF": "\n", "CR": "\r", "CRLF": "\r\n", "tab": "\t"}
VISIBLE = ["Logo design", "Création de logo", "تصميم شعار", "ロゴ", "Logo 🎨", "a b", "x" * 200]


@pytest.mark.parametrize("text", VISIBLE)
def test_visible_text_is_kept_on_one_line_and_on_many(text: str) -> None:
    assert check_text(text, "title", max_length=200, single_line=True) == text
    assert check_text(text, "message", max_length=MAX_TEXT) == text
    assert hidden_characters(text) is None


@pytest.mark.parametrize("hidden", list(HIDDEN.values()), ids=list(HIDDEN))
@pytest.mark.parametrize("single_line", [True, False])
def test_control_and_invisible_characters_are_refused_everywhere(
    hidden: str, single_line: bool
) -> None:
    with pytest.raises(ValidationFailed, match="control or invisible") as refused:
        check_text(f"Logo{hidden}design", "title", max_length=200, single_line=single_line)
    assert refused.value.field == "title"
    assert f"U+{ord(hidden[0]):04X}" in refused.value.detail


@pytest.mark.parametrize("brk", list(LINE_BREAKS.values()), ids=list(LINE_BREAKS))
def test_line_breaks_and_tabs_are_refused_on_one_line_and_kept_on_many(brk: str) -> None:
    with pytest.raises(ValidationFailed, match="one line"):
        check_text(f"Logo{brk}design", "title", max_length=200, single_line=True)
    text = f"First line{brk}second line"
    assert check_text(text, "requirements", max_length=MAX_TEXT) == text


def test_the_other_rules_still_come_first() -> None:
    with pytest.raises(ValidationFailed, match="NUL"):
        check_text("a\x00b", "title", max_length=200, single_line=True)
    with pytest.raises(ValidationFailed, match="empty"):
        check_text("   ", "title", max_length=200, single_line=True)
    with pytest.raises(ValidationFailed, match="at most"):
        check_text("x" * 201, "title", max_length=200, single_line=True)
    with pytest.raises(ValidationFailed, match="string"):
        check_text(7, "title", max_length=200, single_line=True)


def test_hidden_characters_keeps_what_it_is_told_to() -> None:
    assert hidden_characters("a\nb", keep=frozenset("\n")) is None
    assert hidden_characters("a\nb") == "control or invisible characters (U+000A)"
    assert hidden_characters("demo-client\u200b") == "control or invisible characters (U+200B)"
