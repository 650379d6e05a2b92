"""Every hostile case of :mod:`tests.io.hostile` at the command line: exit code 2, one line
``alsseg: error: FILE: PROBLEM``, no traceback, nothing created anywhere, inputs unchanged."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("alsseg_hostile", Path(__file__).with_name("hostile.py"))
hostile = importlib.util.module_from_spec(_spec)
sys.modules["alsseg_hostile"] = hostile
_spec.loader.exec_module(hostile)

NAMES = sorted(hostile.CASES)


@pytest.mark.parametrize("name", NAMES)
def test_hostile_case(name, tmp_path):
    why = hostile.runnable(name)
    if why:
        pytest.skip(why)
    held, detail = hostile.run_case(name, tmp_path)
    assert held, f"{name}: {detail}"


def test_suite_covers_the_issue():
    assert len(NAMES) >= 50
