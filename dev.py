#!/usr/bin/env python3
"""Set up and run reelroi with nothing but Python: ``python3 dev.py demo|check``.

``demo``  creates ./.venv, installs reelroi and runs ``reelroi demo``: the
          embedded broker, a worker and the embedded ClickHouse, with live
          generated traffic and a live ROI table (extra arguments pass through,
          e.g. ``python3 dev.py demo --minutes 1``).
``check`` installs the dev tools and runs ruff, mypy, import-linter and pytest
          (the command CI runs).
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def sh(*args: str | Path, **kw: object) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], check=True, cwd=ROOT, **kw)  # type: ignore[call-overload]


def setup(extras: str = "") -> None:
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    marker = VENV / f".installed{extras}"
    stamp = str((ROOT / "pyproject.toml").stat().st_mtime)
    if marker.exists() and marker.read_text() == stamp:
        return
    sh(BIN / "python", "-m", "pip", "install", "-q", "--upgrade", "pip")
    sh(BIN / "python", "-m", "pip", "install", "-q", "-e", f".{extras}")
    marker.write_text(stamp)


def demo() -> None:
    setup()
    sh(BIN / "reelroi", "demo", *sys.argv[2:])


def check() -> None:
    setup("[dev]")
    sh(BIN / "ruff", "check", ".")
    sh(BIN / "ruff", "format", "--check", ".")
    sh(BIN / "mypy")
    sh(BIN / "lint-imports")
    sh(BIN / "python", "-m", "pytest", *sys.argv[2:])


if __name__ == "__main__":
    task = sys.argv[1] if len(sys.argv) > 1 else ""
    tasks = {"demo": demo, "check": check}
    if task not in tasks:
        sys.exit(f"usage: python3 dev.py {{{'|'.join(tasks)}}}")
    try:
        tasks[task]()
    except subprocess.CalledProcessError as exc:
        sys.exit(exc.returncode)
