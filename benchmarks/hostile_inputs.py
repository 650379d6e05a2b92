"""Hostile inputs against the command line: a table case → held / failed (and why).

Every case is built on the fly by ``tests/io/hostile.py`` (no binary fixture in the repository)
and run in-process through ``alsseg.cli.main``; a case *holds* when the command exits with code 2,
prints exactly one stderr line ``alsseg: error: FILE: PROBLEM`` naming the file and the problem,
shows no traceback, leaves the temporary tree byte-for-byte as it was (inputs unchanged, nothing
created) and ends within 5 minutes (no hang). The same cases run as tests in ``tests/io/test_hostile.py``;
add a case there by adding a function.

    python benchmarks/hostile_inputs.py [--only SUBSTRING]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

from _machine import machine  # benchmarks/_machine.py

REPO = Path(__file__).resolve().parents[1]


def load_cases():
    spec = importlib.util.spec_from_file_location("alsseg_hostile", REPO / "tests" / "io" / "hostile.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["alsseg_hostile"] = mod
    spec.loader.exec_module(mod)
    return mod


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="run the cases whose name contains this")
    a = ap.parse_args(argv)
    hostile = load_cases()
    names = [n for n in sorted(hostile.CASES) if not a.only or a.only in n]
    print(f"# hostile inputs: {len(names)} cases; {machine()}")
    print(f"{'case':44s} {'result':8s} {'s':>5s}  detail")
    held = failed = skipped = 0
    for name in names:
        why = hostile.runnable(name)
        if why:
            skipped += 1
            print(f"{name:44s} {'skipped':8s} {'':>5s}  {why}")
            continue
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            try:
                ok, detail = hostile.run_case(name, Path(d))
            except Exception as exc:  # noqa: BLE001 - a broken case is a failed case
                ok, detail = False, f"harness: {type(exc).__name__}: {exc}"
        held += ok
        failed += not ok
        line = detail.replace(d, "TMP") if ok else detail
        print(f"{name:44s} {'held' if ok else 'FAILED':8s} {time.perf_counter() - t0:5.1f}  {line[:110]}")
    print(f"# {held} held, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
