"""`haochaping reports`: STUB (issue 8)."""

from __future__ import annotations

import argparse

from bot.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sub.add_parser("reports", help="(not yet)")


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run the subcommand; the exit status."""
    return 2
