"""A closed network's install (issue 26): scripts/wheelhouse builds a folder of every wheel the service needs from
the pinned set, and a fresh venv installs the service from that folder with no index at all (an index URL that
answers nothing, and pip's own configuration left out), then runs it: the schema made, a tick's JSON printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_the_service_installs_from_a_wheelhouse_with_the_index_switched_off(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    built = subprocess.run(["bash", str(ROOT / "scripts" / "wheelhouse"), str(wheels)], capture_output=True,
                           text=True, timeout=900, env={**os.environ, "PYTHON": sys.executable})
    assert built.returncode == 0, built.stderr[-3000:]
    names = {p.name.split("-")[0].lower() for p in wheels.glob("*.whl")}
    assert {"haochaping", "aiohttp", "sqlalchemy", "asyncpg", "cryptography", "wechatpy", "twilio"} <= names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    closed = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1",
              "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    closed.pop("PIP_FIND_LINKS", None)
    # --no-compile: pip's byte-compiling of the 69 wheels is two thirds of the install's time and no part of
    # what this proves (Python compiles what the tick imports as it imports it).
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-compile", "--no-index", "--find-links",
                              str(wheels), "haochaping"], capture_output=True, text=True, timeout=900, env=closed)
    assert install.returncode == 0, install.stderr[-3000:]

    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAOCHAPING_")}
    tick = subprocess.run([str(venv / "bin" / "haochaping"), "tick", "--now", "2026-11-21T10:00:00+08:00"],
                          capture_output=True, text=True, timeout=300, cwd=work, env=env)
    assert tick.returncode == 0, tick.stderr[-3000:]
    assert "reminders" in json.loads(tick.stdout) and (work / "haochaping.db").exists()
