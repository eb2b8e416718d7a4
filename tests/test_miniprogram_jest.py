"""The mini-program (miniprogram/) under WeChat's miniprogram-simulate and jest (tests/miniprogram/), against a real
`haochaping serve` its tests start; and its words, which must be the catalogs' (scripts/mp_strings.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "tests" / "miniprogram"
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def test_the_mini_programs_words_are_generated_from_the_catalogs() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "mp_strings.py"), "--check"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_the_mini_program_rates_through_the_real_service() -> None:
    jest = HERE / "node_modules" / ".bin" / "jest"
    if not jest.exists():
        if shutil.which("npm") is None:
            if CI:
                pytest.fail("npm is missing: the mini-program's tests cannot run")
            pytest.skip("npm is missing (scripts/install-chromium installs the mini-program's test tools)")
        subprocess.run(["npm", "ci", "--prefix", str(HERE), "--no-audit", "--no-fund", "--ignore-scripts",
                        "--loglevel=error"], check=True, timeout=600)
    env = {**os.environ, "HCP_PYTHON": sys.executable}
    done = subprocess.run([str(jest), "--ci", "--colors=false"], cwd=HERE, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-8000:]
