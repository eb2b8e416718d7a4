"""The README and docs/ as a newcomer meets them.

- The quick start's commands are what `.ci/run` runs (it adds pip's `-q`, and the README says so), and
  every test command in the docs runs pytest as the suite does, `python -m pytest`.
- The first screen of the README says what the service is, holds both commands, the simulator and the
  map of docs/, which links every file there.
- Every Markdown table renders: a header, a delimiter row, rows of as many cells, and a blank line on
  either side (a blank line inside a table drops the rows after it out of it; a line of prose right
  after one is taken as one more row).
- Every relative link points to a file of the repository (and a heading of it, for an anchor), and
  nothing points outside the repository (`../shared`). Every seed citation ("Shantou art. 31") names one
  of the five seed regulations, which docs/architecture.md explains.
- The "Using it" block works pasted after the quick start: `serve` (started here as the README restarts
  it, with its API token) runs on a free port with HAOCHAPING_PUBLIC_URL to match; the block, run with
  bash in the same working directory, finds the service through HAOCHAPING_PUBLIC_URL, and its
  `tick --now` really sends the 24-hour reminder.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
SUBJECTS = ("configuration", "providers", "hotline", "work-orders", "figures", "supervision", "hall", "operations",
            "performance", "architecture")
FIRST_SCREEN = 45  # lines
HAOCHAPING = Path(sys.executable).with_name("haochaping")  # the console script of the venv running the tests
STARTUP_SECONDS = 30.0

FENCE = re.compile(r"^\s*(```|~~~)")
DELIMITER = re.compile(r"^\|(\s*:?-{3,}:?\s*\|)+$")
LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"(`+)([\s\S]+?)\1")  # a code span may run over a line break


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def prose(source: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of every line outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(source.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def prose_text(source: str) -> str:
    """The source with the lines of fenced code blocks left empty (line numbers stay)."""
    kept = dict(prose(source))
    return "\n".join(kept.get(n, "") for n in range(1, len(source.splitlines()) + 1))


def line_of(source: str, offset: int) -> int:
    return source.count("\n", 0, offset) + 1


def code_blocks(source: str) -> list[tuple[str, str]]:
    """(info string, body) of every fenced code block."""
    blocks, info, body, fenced = [], "", [], False
    for line in source.splitlines():
        if FENCE.match(line):
            if fenced:
                blocks.append((info, "\n".join(body)))
            else:
                info, body = FENCE.sub("", line).strip(), []
            fenced = not fenced
        elif fenced:
            body.append(line)
    return blocks


def section(source: str, heading: str) -> str:
    """The text under a `## heading`, up to the next heading of that level."""
    lines = source.splitlines()
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start + 1:end])


def shell_blocks(source: str) -> list[str]:
    return [body for info, body in code_blocks(source) if info == "sh"]


# --- (1) the quick start is what CI runs -------------------------------------------------------------------


def ci_command() -> str:
    lines = [line.strip() for line in text(ROOT / ".ci" / "run").splitlines()]
    commands = [line for line in lines if line and not line.startswith("#") and not line.startswith(("set ", "cd "))]
    assert len(commands) == 1, commands
    return commands[0]


def test_quick_start_is_what_ci_runs():
    quick = section(text(README), "## Quick start")
    serve, suite = (block.strip() for block in shell_blocks(quick))
    ci = ci_command()
    # .ci/run adds -q to pip, and nothing else; the README says so instead of "exactly".
    assert ci.replace(" install -q ", " install ", 1) == suite
    assert ci != suite
    assert "`-q`" in quick and "exactly" not in quick
    # Both commands make the same venv and install with the same constraints.
    serve_steps, suite_steps = serve.split(" && "), suite.split(" && ")
    assert serve_steps == ["python3 -m venv .venv", ".venv/bin/pip install -c constraints.txt -e .",
                           ".venv/bin/haochaping serve"]
    assert suite_steps[1:3] == [serve_steps[0], serve_steps[1].replace("-e .", "-e '.[test]'")]
    assert suite_steps[-1] == ".venv/bin/python -m pytest"


def test_pytest_runs_as_the_suite_runs_it():
    """Wherever the docs run pytest, in a code block or a code span, it is `python -m pytest`."""
    for page in PAGES:
        source = text(page)
        code = [body for _, body in code_blocks(source)]
        code += [m.group(2) for m in CODE_SPAN.finditer(prose_text(source))]
        for snippet in code:
            for m in re.finditer(r"(?<![\w/.-])pytest(?![\w.-])", snippet):
                assert snippet[:m.start()].endswith("python -m "), f"{name(page)}: {snippet!r}"


def test_first_screen():
    source = text(README)
    screen = "\n".join(source.splitlines()[:FIRST_SCREEN])
    for block in shell_blocks(section(source, "## Quick start")):
        assert block in screen
    for words in ("好差评", "SMS", "WeChat", "12345", "rating page", "work order", "http://127.0.0.1:8080/simulator/"):
        assert words in screen, words
    linked = {m.group(2) for m in LINK.finditer(screen)}
    assert {f"docs/{subject}.md" for subject in SUBJECTS} <= linked
    assert {page.stem for page in DOCS.glob("*.md")} == set(SUBJECTS)  # one file per subject, each on the map
    assert not re.search(r"\bStatus\b|\bIssue \d", source), "status chatter in the README"


# --- (2) tables --------------------------------------------------------------------------------------------


def cells(row: str) -> int:
    """The cells of a table row: its pipes, less escaped ones (`\\|`), less the two at its ends."""
    return len(re.findall(r"(?<!\\)\|", row)) - 1


def tables(source: str) -> Iterator[list[tuple[int, str]]]:
    """Runs of consecutive table lines (outside code blocks)."""
    run: list[tuple[int, str]] = []
    for number, line in prose(source):
        if line.lstrip().startswith("|"):
            run.append((number, line.strip()))
            continue
        if run:
            yield run
            run = []
    if run:
        yield run


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_every_table_renders(page):
    source = text(page)
    lines = source.splitlines()
    found = 0
    for run in tables(source):
        found += 1
        first, header = run[0]
        where = f"{name(page)}:{first}"
        assert len(run) >= 2 and DELIMITER.match(run[1][1]), (
            f"{where}: rows without a header and a delimiter row (a blank line inside a table?): {header!r}")
        widths = Counter(cells(row) for _, row in run)
        assert len(widths) == 1, f"{where}: rows of {sorted(widths)} cells: " + "; ".join(
            f"line {n} has {cells(row)}" for n, row in run if cells(row) != cells(header))
        assert all(row.endswith("|") for _, row in run), f"{where}: a row does not end with |"
        assert first == 1 or not lines[first - 2].strip(), f"{where}: no blank line before the table"
        last = run[-1][0]
        assert last == len(lines) or not lines[last].strip(), f"{name(page)}:{last + 1}: no blank line after the table"
    if page.name in ("configuration.md", "operations.md", "figures.md"):
        assert found, f"{name(page)}: its tables were not found"


def test_table_checks_catch_the_known_faults():
    split = "| key | default |\n| --- | --- |\n| a | 1 |\n\n| b | 2 |\n"
    assert [len(run) for run in tables(split)] == [3, 1]  # the fallen-out row is a run without a header
    assert cells(r"| `--role l1\|l2` | creates |") == 2
    assert cells("| a | b | c |") == 3


# --- (3) links ---------------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    heading = LINK.sub(r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: Counter[str] = Counter()
    out = set()
    for _, line in prose(text(path)):
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            base = slug(m.group(1))
            out.add(base if not seen[base] else f"{base}-{seen[base]}")
            seen[base] += 1
    return out


def links(page: Path) -> Iterator[tuple[int, str]]:
    """(line number, target) of every link outside code."""
    bare = CODE_SPAN.sub(lambda m: "\n" * m.group(0).count("\n"), prose_text(text(page)))
    for m in LINK.finditer(bare):
        yield line_of(bare, m.start()), m.group(2)


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_relative_links_resolve(page):
    checked = 0
    for number, target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        where = f"{name(page)}:{number}: {target}"
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.is_relative_to(ROOT), f"{where} leaves the repository"
        assert resolved.exists(), f"{where} does not exist"
        if anchor:
            assert resolved.suffix == ".md" and anchor in anchors(resolved), f"{where}: no such heading"
        checked += 1
    assert checked, f"{name(page)} links nowhere"


def test_nothing_refers_outside_the_repository():
    for page in PAGES:
        for needle in ("../shared", "/work/shared"):
            assert needle not in text(page), f"{name(page)} mentions {needle}"
    assert "CONTRACT.md" in section(text(README), "## The contract")


def test_seed_citations_are_explained():
    seeds = section(text(DOCS / "architecture.md"), "## The seed regulations")
    for place, seed in (("Hainan", "000"), ("Fujian", "001"), ("Haikou", "002"), ("Shantou", "003"),
                        ("Shandong", "004")):
        assert re.search(rf"{place}[^;]*\b{seed}\b", seeds), place
    cited = {m.group(1) for page in PAGES for m in re.finditer(r"\b([A-Z][a-z]+) (?:art\.|[一二三四五六七八九十]+)",
                                                                text(page))}
    assert cited and cited <= {"Hainan", "Fujian", "Haikou", "Shantou", "Shandong"}, cited


# --- (4) the "Using it" block, run -------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any setting of the service's (no provider, token or database leaks in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAOCHAPING_", "TWILIO_", "WECHAT_"))}
    return {**env, **extra}


def wait_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        assert process.poll() is None, f"serve exited with {process.returncode}:\n{log.read_text()}"
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        assert time.monotonic() < deadline, f"serve did not answer /healthz in {STARTUP_SECONDS} s:\n{log.read_text()}"
        time.sleep(0.1)


@pytest.mark.slow
def test_using_it_block_runs(tmp_path):
    using = section(text(README), "## Using it")
    restart, block = shell_blocks(using)
    # The README restarts the quick start's serve with a token; the block itself starts nothing and names
    # the port only as the default of the variable it reads.
    m = re.fullmatch(r"HAOCHAPING_API_TOKEN=(\S+) \.venv/bin/haochaping serve", restart.strip())
    assert m, restart
    assert "haochaping serve" not in block and "--port" not in block
    assert block.count("8080") == 1 and "${HAOCHAPING_PUBLIC_URL:-http://127.0.0.1:8080}" in block

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)  # the block calls .venv/bin/haochaping
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        serve = subprocess.Popen([str(HAOCHAPING), "serve", "--port", str(port)], cwd=tmp_path,
                                 env=clean_env(HAOCHAPING_API_TOKEN=m.group(1), HAOCHAPING_PUBLIC_URL=url),
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_healthy(serve, url, log)
        # A second terminal: the service's address, no token (the block's default must be serve's).
        run = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path,
                             env=clean_env(HAOCHAPING_PUBLIC_URL=url), capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stdout + run.stderr
        answers = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
        assert len(answers) == 3, run.stdout
        posted, ticked, case = answers
        assert posted.get("case_no") and posted["case_no"] == case.get("case_no"), run.stdout  # 401: tokens differ
        assert posted["reminders"] == []
        assert ticked["reminders"] == 1 and ticked["sent"] == 1, ticked
        assert [(r["channel"], r["status"]) for r in case["reminders"]] == [("sms", "sent")], case
        assert case["remind_at"] is None
    finally:
        if serve.poll() is None:
            serve.send_signal(signal.SIGTERM)  # by its pid: only the process this test started
            try:
                serve.wait(20)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait(20)
