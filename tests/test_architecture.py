"""The import contract (ARCHITECTURE "The rooms"; issue 22): what may import what, checked on every run so
that the house cannot drift back.

- `dialogs/` imports nothing of ours (pure); `store/` nothing of ours; `channels/` only `dialogs` (the
  neutral types).
- `bot/` is in rooms, each importing only rooms below it (or itself), in this order, lowest first:
  policy (the rules and time), infra (configuration, the runtime, state, logs…), figures (statistics,
  snapshots, exports, reporting), work_orders, rating, supervision (signals and supervisory callbacks),
  inbound (a message's road), delivery (what goes out), duties (the tick's jobs), web, cli. `bot/__init__.py`
  and `bot/__main__.py` stand above them all.
- No module imports itself back through others (no cycle), function-level imports included: a lazy import
  hides a cycle from Python, not from a reader.
- Domain errors carry no HTTP status: outside `bot/web/`, nothing raises with a 4xx or 5xx number; the
  kinds of bot/infra/refusals.py are said in HTTP by bot/web/refusals.py alone.
- Every key of the shared state is built in bot/infra/keys.py: no other module writes one of its namespaces
  (`contact:`, `in:`, `console:` …) by hand.
- Every database query lives in `store/`: no other module builds a statement (select, update, insert,
  delete, raw text, SQL functions); the others call store's functions with a session.
- One dialog protocol: the inbound road knows no dialog by name (it imports dialogs' registry, types and
  keywords, never a dialog's own module), and nothing outside dialogs/registry.py reads a state's `dialog`
  field itself.
- Opting out has one home: only bot/rating/consent.py records an opt-out or an opt-in in the store.
- Tests mirror the code and stand alone: no test module imports another test module or a conftest (what
  several share lives in a support module of tests/, such as helpers.py or api_support.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("policy", "infra", "figures", "work_orders", "rating", "supervision", "inbound", "delivery", "duties", "web",
          "cli")
TOP = len(LAYERS)  # bot/__init__.py, bot/__main__.py


def modules() -> dict[str, Path]:
    out = {}
    for top in ("bot", "dialogs", "store", "channels"):
        for path in (ROOT / top).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


MODULES = modules()


def imports(path: Path) -> set[str]:
    """The modules of ours a file imports, anywhere in it (a name imported from a package that is a module of
    it counts as that module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                whole = f"{node.module}.{alias.name}"
                found.add(whole if whole in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {m for m in found if m.split(".")[0] in ("bot", "dialogs", "store", "channels")}


GRAPH = {name: imports(path) for name, path in MODULES.items()}


def layer(module: str) -> int:
    parts = module.split(".")
    if parts[0] != "bot":
        return -1
    if len(parts) == 1 or parts[1] in ("__main__",):
        return TOP
    return LAYERS.index(parts[1])


def test_every_bot_module_is_in_a_room() -> None:
    loose = [name for name, path in MODULES.items()
             if name.startswith("bot.") and name.count(".") == 1 and path.name != "__init__.py"
             and name != "bot.__main__"]
    assert not loose, f"modules of bot/ outside its rooms ({', '.join(LAYERS)}): {loose}"


def test_the_layers_below_bot_import_what_they_may() -> None:
    allowed = {"dialogs": {"dialogs"}, "store": {"store"}, "channels": {"channels", "dialogs"}}
    wrong = {}
    for name, found in GRAPH.items():
        top = name.split(".")[0]
        outside = sorted(m for m in found if top in allowed and m.split(".")[0] not in allowed[top])
        if outside:
            wrong[name] = outside
    assert not wrong, f"dialogs and store import nothing of ours, channels only dialogs: {wrong}"


QUERY_BUILDERS = {"select", "update", "delete", "insert", "text", "col", "func", "and_", "or_", "not_", "case",
                  "exists", "literal", "cast", "bindparam", "column", "table"}


def query_builders(path: Path) -> list[str]:
    """The statement builders a file imports from SQLAlchemy or SQLModel."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("sqlalchemy", "sqlmodel"):
            found += [a.name for a in node.names if a.name in QUERY_BUILDERS]
    return found


def test_every_query_lives_in_store() -> None:
    outside = {name: found for name, path in MODULES.items()
               if not name.startswith("store") and (found := query_builders(path))}
    assert not outside, f"statements built outside store/: {outside}"


def http_statuses_raised(path: Path) -> list[int]:
    """The HTTP-looking numbers (400-599) given to what a file raises."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Raise) and node.exc is not None:
            for inner in ast.walk(node.exc):
                if isinstance(inner, ast.Constant) and type(inner.value) is int and 400 <= inner.value <= 599:
                    found.append(inner.value)
    return found


def test_domain_errors_carry_no_http_status() -> None:
    raising = {name: found for name, path in MODULES.items()
               if name.startswith("bot.") and not name.startswith(("bot.web", "bot.cli"))
               and (found := http_statuses_raised(path))}
    assert not raising, f"HTTP statuses raised outside the web layer: {raising}"


def test_the_web_says_each_refusal_in_http() -> None:
    from datetime import UTC, datetime

    from bot.infra.refusals import Invalid, NotFound, NotNow, NotYours
    from bot.rating.ratings import RaterBarred, RatingRefused
    from bot.web.refusals import status_of

    barred = RaterBarred(datetime(2027, 1, 1, tzinfo=UTC))
    assert [status_of(e) for e in (NotFound("x"), NotYours("x"), NotNow("x"), Invalid("x"), RatingRefused("x"),
                                   barred)] == [404, 403, 409, 422, 409, 403]
    assert isinstance(barred, RatingRefused)  # a caller refusing ratings refuses a barred rater's too


def state_keys_written(path: Path) -> list[str]:
    """String literals (f-strings included) that begin like a key of one of bot/infra/keys.py's namespaces."""
    from bot.infra.keys import NAMESPACES

    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inner = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    for node in ast.walk(tree):
        if id(node) in inner:
            continue  # a piece of an f-string: read with it
        first = node.values[0] if isinstance(node, ast.JoinedStr) and node.values else node
        if isinstance(first, ast.Constant) and isinstance(first.value, str) \
                and any(first.value.startswith(ns + ":") for ns in NAMESPACES):
            found.append(first.value)
    return found


def test_every_state_key_is_built_in_one_place() -> None:
    written = {name: found for name, path in MODULES.items()
               if name.startswith("bot.") and name != "bot.infra.keys" and (found := state_keys_written(path))}
    assert not written, f"state keys written outside bot/infra/keys.py: {written}"


DIALOG_MODULES = ("dialogs.rating", "dialogs.callback", "dialogs.keypad")


def test_the_conversation_road_knows_no_dialog_by_name() -> None:
    road = {name: sorted(GRAPH[name] & set(DIALOG_MODULES)) for name in ("bot.inbound.conversation",
                                                                          "bot.inbound.effects")}
    assert not any(road.values()), f"the inbound road imports a dialog's own module: {road}"


def reads_the_dialog_field(path: Path) -> bool:
    """`something["dialog"]` or `something.get("dialog")`: a state's envelope opened by hand."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and node.slice.value == "dialog":
            return True
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value == "dialog"):
            return True
    return False


def test_only_the_registry_opens_a_states_envelope() -> None:
    opened = sorted(name for name, path in MODULES.items()
                    if name != "dialogs.registry" and reads_the_dialog_field(path))
    assert not opened, f"a state's dialog field read outside dialogs/registry.py: {opened}"


def calls_to(path: Path, names: set[str]) -> list[str]:
    """Calls of `x.name(...)` for the names given (the store's functions, whatever the module is imported as)."""
    return [node.func.attr for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in names
            and isinstance(node.func.value, ast.Name) and "contact" in node.func.value.id]


def test_opting_out_has_one_home() -> None:
    elsewhere = {name: found for name, path in MODULES.items()
                 if name.startswith("bot.") and name != "bot.rating.consent"
                 and (found := calls_to(path, {"opt_out", "opt_in"}))}
    assert not elsewhere, f"opt-outs recorded outside bot/rating/consent.py: {elsewhere}"


def imported_test_modules(path: Path) -> list[str]:
    """The test modules and conftests a file of tests/ imports, anywhere in it (tests/ is on the path, so they
    are imported by their bare names)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        found += [n for n in names if n.startswith(("test_", "tests.")) or n == "conftest"]
    return found


def test_no_test_module_imports_another() -> None:
    tests = ROOT / "tests"
    coupled = {str(p.relative_to(tests)): found for p in tests.rglob("*.py")
               if (found := imported_test_modules(p))}
    assert not coupled, f"test modules importing other test modules (move the helpers to a support module): {coupled}"


def upward(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    """The bot modules importing a room above their own."""
    wrong = {}
    for name, found in graph.items():
        if name.split(".")[0] != "bot":
            continue
        up = sorted(m for m in found if m.startswith("bot.") and layer(m) > layer(name))
        if up:
            wrong[name] = up
    return wrong


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first walk meets (each through the module where it closes)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                found.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_bot_rooms_import_downward_only() -> None:
    wrong = upward(GRAPH)
    assert not wrong, f"imports upward, against the order {' < '.join(LAYERS)}: {wrong}"


def test_no_import_cycles() -> None:
    assert not cycles(GRAPH), f"import cycles: {cycles(GRAPH)}"


def test_the_query_check_sees_a_statement_built_outside_store(tmp_path: Path) -> None:
    module = tmp_path / "somewhere.py"
    module.write_text("from sqlalchemy import update\nfrom sqlmodel import col, select\n"
                      "from sqlmodel.ext.asyncio.session import AsyncSession\n", encoding="utf-8")
    assert query_builders(module) == ["update", "col", "select"]


def test_the_key_check_sees_a_key_written_by_hand(tmp_path: Path) -> None:
    module = tmp_path / "somewhere.py"
    module.write_text('KEY = f"sim:{1}"\nOTHER = "login:pair:x"\nFINE = "simple"\n', encoding="utf-8")
    assert state_keys_written(module) == ["sim:", "login:pair:x"]


def test_the_protocol_checks_see_what_they_are_for(tmp_path: Path) -> None:
    module = tmp_path / "somewhere.py"
    module.write_text('if state.get("dialog") == "callback":\n    contacts.opt_out(s, 1, "reply", now)\n',
                      encoding="utf-8")
    assert reads_the_dialog_field(module) and calls_to(module, {"opt_out"}) == ["opt_out"]
    module.write_text('x = data["dialog"]\nconsent.opt_out(s, 1, By.REPLY, now)\n', encoding="utf-8")
    assert reads_the_dialog_field(module) and calls_to(module, {"opt_out"}) == []


def test_the_test_coupling_check_sees_an_import_of_a_test_module(tmp_path: Path) -> None:
    module = tmp_path / "test_somewhere.py"
    module.write_text("from aiohttp.test_utils import TestClient\nfrom api_support import fields\n"
                      "def f():\n    from test_api import fields\n    import conftest\n", encoding="utf-8")
    assert imported_test_modules(module) == ["test_api", "conftest"]


def test_the_checks_catch_what_they_are_for() -> None:
    """The two checks on a made-up house: a policy module importing the web, and two modules importing each
    other through a third."""
    bad = {"bot.policy.rules": {"bot.web.views"}, "bot.web.views": set(),
           "bot.rating.a": {"bot.rating.b"}, "bot.rating.b": {"bot.rating.c"}, "bot.rating.c": {"bot.rating.a"}}
    assert upward(bad) == {"bot.policy.rules": ["bot.web.views"]}
    assert cycles(bad) == [["bot.rating.a", "bot.rating.b", "bot.rating.c", "bot.rating.a"]]
