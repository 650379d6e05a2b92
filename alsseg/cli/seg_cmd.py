"""Verbs of this group are registered here (filled in by the owning issue)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's verbs to the alsseg parser."""
