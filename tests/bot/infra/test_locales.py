"""Every citizen-facing text comes from the catalogs, complete in every language."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.infra.i18n import LOCALES_DIR, SUPPORTED, Catalogs, negotiate, read_catalog
from bot.policy.rules import DEFAULT_REASONS
from dialogs import messages
from dialogs.types import CaseView, Reply

ROOT = Path(__file__).resolve().parents[3]
PLACEHOLDER = re.compile(r"\{(\w+)\}")
PAGE_KEY = re.compile(r"^(?:page|console|sim|hall)\.[a-z0-9_.]+$")
TEMPLATE_KEY = re.compile(r"""\bt\(\s*['"]([a-z0-9_.]+)['"]\s*[,)]""")


def page_keys() -> set[str]:
    """The keys the pages use: t('…') in the templates, and page/console/simulator keys in the code."""
    found: set[str] = set()
    for path in (ROOT / "bot" / "web" / "templates").glob("*.html"):
        found |= set(TEMPLATE_KEY.findall(path.read_text(encoding="utf-8")))
    for path in (ROOT / "bot").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found |= {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                  and PAGE_KEY.match(n.value)}
    return found


MP_WORD = re.compile(r"\bw\.((?:mp|page|grade)_[a-z0-9_]+)")


def miniprogram_keys() -> set[str]:
    """The keys the mini-program shows (`w.mp_offline` is "mp.offline": miniprogram/i18n/ is generated from the
    catalogs by scripts/mp_strings.py), so that none it uses is missing and none is kept for nothing."""
    found: set[str] = set()
    for pattern in ("*.js", "*.wxml"):
        for path in (ROOT / "miniprogram").rglob(pattern):
            if "/i18n/" not in path.as_posix():
                found |= {name.replace("_", ".", 1) for name in MP_WORD.findall(path.read_text(encoding="utf-8"))}
    return found


REQUIRED = (set(messages.ALL) | page_keys() | set(messages.GRADE_NAMES) | miniprogram_keys()
            | {f"reason.{code}" for code in DEFAULT_REASONS})


def template_keys() -> set[str]:
    return set(read_catalog_ids(LOCALES_DIR / "messages.pot"))


def read_catalog_ids(path: Path) -> list[str]:
    from babel.messages.pofile import read_po

    with open(path, "rb") as f:
        return [str(m.id) for m in read_po(f) if m.id]


def test_the_template_lists_every_key_the_code_uses():
    assert template_keys() == REQUIRED


@pytest.mark.parametrize("locale", SUPPORTED)
def test_every_catalog_is_complete_with_the_same_placeholders(locale):
    catalog = read_catalog(LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po")
    source = read_catalog(LOCALES_DIR / "zh_Hans" / "LC_MESSAGES" / "messages.po")
    missing = sorted(REQUIRED - set(catalog))
    assert not missing, f"{locale} lacks {missing}"
    for key in REQUIRED:
        assert set(PLACEHOLDER.findall(catalog[key])) == set(PLACEHOLDER.findall(source[key])), (locale, key)


@pytest.mark.parametrize("locale", SUPPORTED)
@pytest.mark.parametrize("key", sorted(messages.ALL))
def test_every_message_renders(locale, key):
    params = {"item": "营业执照", "agency": "市场监管局", "completed_at": datetime(2026, 11, 20, 2, tzinfo=UTC),
              "link": "https://x/r/1.a", "count": 2, "reasons": ((1, "attitude"), (2, "other")),
              "number": 1, "label": "x", "until": datetime(2027, 11, 20, 2, tzinfo=UTC),
              "key_reasons": ((1, "attitude"), (2, "other")),
              "cases": (CaseView(1, "A-1", "营业执照", "局", datetime(2026, 11, 20, 2, tzinfo=UTC), "https://x/r/1.a"),)}
    text = Catalogs().render(Reply(key, params), locale, tz=ZoneInfo("Asia/Shanghai"), reasons=DEFAULT_REASONS)
    assert text.strip() and "{" not in text


def test_the_grade_prompts_state_every_digit_in_every_language():
    for locale in SUPPORTED:
        for key in (messages.REMINDER, messages.MENU, messages.REPROMPT):
            text = Catalogs().text(locale, key)
            assert all(d in text for d in "12345"), (locale, key)


@pytest.mark.parametrize(("tag", "expected"), [
    ("zh-CN", "zh_Hans"), ("zh_CN", "zh_Hans"), ("zh-Hans", "zh_Hans"), ("zh-TW", "zh_Hant"), ("zh-HK", "zh_Hant"),
    ("zh-Hant", "zh_Hant"), ("en", "en"), ("en-GB", "en"), ("fr", "zh_Hans"), ("", "zh_Hans"), (None, "zh_Hans"),
    ("!!", "zh_Hans"),
])
def test_locale_negotiation(tag, expected):
    assert negotiate(tag) == expected


def _string_constants_with_cjk(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docstrings and re.search(r"[\u4e00-\u9fff]", n.value)]


# Chinese that the code may hold: words it reads (parsing), and the built-in policy's reason labels
# (policy data, overridable by the policy file).
ALLOWED = {"dialogs/parse.py", "dialogs/grammar.py", "bot/policy/rules.py"}


def test_no_citizen_facing_chinese_literal_in_code():
    offenders = {}
    for folder in ("bot", "channels", "dialogs", "store"):
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if rel in ALLOWED or "/migrations/" in rel:
                continue
            found = _string_constants_with_cjk(path)
            if found:
                offenders[rel] = found
    assert not offenders, f"Chinese text in code (use the catalogs): {offenders}"
