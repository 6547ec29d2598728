"""Running ``tiein ARGS`` in-process through the console entry point ``tiein.cli.main``: the
same code and error boundary as the installed script, without an interpreter start-up. Used by
tests/test_bad_input.py and tests/test_home_safety.py."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tiein.cli import main


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return [ln for ln in self.err.splitlines() if ln.strip()]


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    """``values`` set, ``TIEIN_STORE`` and ``TIEIN_FAULT`` unset; all restored afterwards."""
    old = {k: os.environ.get(k) for k in [*values, "TIEIN_STORE", "TIEIN_FAULT"]}
    os.environ.pop("TIEIN_STORE", None)
    os.environ.pop("TIEIN_FAULT", None)
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_cli(*args: str, home: Path, **env: str) -> Result:
    """Run ``tiein ARGS`` in-process for ``home``; an exception that escapes ``main`` (a
    traceback a user would see) fails the test."""
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["tiein", *args]
    try:
        with _env(TIEIN_HOME=str(home), HF_HUB_OFFLINE="1", **env):
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    main()
                    code = 0
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    return Result(code, out.getvalue(), err.getvalue())
