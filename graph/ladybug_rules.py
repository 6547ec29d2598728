"""The embedded store's merchant rules: ``path/rules.json`` beside the generations (a rebuild or
an update never touches it), saved atomically under ``path/.rules.lock``, versioned."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from tiein.durable import fsync_dir
from tiein.errors import ConfigError, StoreError, StoreUnavailable
from tiein.graph.base import check_rule_rows, check_rules_version, rules_answer
from tiein.graph.ladybug_support import _WriterLock

RULES_FILE = "rules.json"
RULES_LOCK = ".rules.lock"


@contextlib.contextmanager
def _rules_lock(path: Path, wait_s: float = 5.0) -> Any:
    """The rules lock, waiting up to ``wait_s`` for another saver (a save takes milliseconds)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            lock = _WriterLock(path).__enter__()
            break
        except StoreError:
            if time.monotonic() > deadline:
                raise StoreError("another process is saving the rules; try again") from None
            time.sleep(0.02)
    try:
        yield lock
    finally:
        lock.__exit__()


class RulesFile:
    """``path/rules.json``: read (re-read only when the file changed: one ``stat`` per call, so a
    server sees another process's save on its next request) and saved as the next version."""

    def __init__(self, path: Path, lock: threading.RLock) -> None:
        self.path = path
        self._lock = lock
        self._memo: tuple[Any, dict[str, Any]] | None = None  # (file identity, rules answer)

    def read(self) -> dict[str, Any]:
        """The rules in ``path/rules.json`` (version 0, none, before the first save). Re-read only
        when the file changed (one ``stat`` per call), so a server sees another process's save
        on its next request."""
        target = self.path / RULES_FILE
        try:
            st = target.stat()
        except FileNotFoundError:
            return rules_answer(0, None, [])
        except OSError as exc:
            raise StoreUnavailable(f"cannot read the rules file {RULES_FILE}: {exc.strerror}") from exc
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            memo = self._memo
            if memo is None or memo[0] != key:
                try:
                    doc = json.loads(target.read_text(encoding="utf-8"))
                    answer = rules_answer(
                        doc["version"], doc.get("updated_at"), check_rule_rows(doc["rules"])
                    )
                except (OSError, ValueError, KeyError, TypeError, ConfigError) as exc:
                    raise StoreUnavailable(
                        f"the rules file {RULES_FILE} of the graph store is damaged ({exc}): "
                        "restore it from a backup or import the merchant file again"
                    ) from exc
                memo = self._memo = (key, answer)
        return {**memo[1], "rules": [dict(r) for r in memo[1]["rules"]]}

    def save(self, rules: list[dict[str, Any]], *, expected_version: int | None = None) -> dict[str, Any]:
        """Write ``rules`` to ``path/rules.json`` atomically (temp file, fsync, ``os.replace``)
        under ``path/.rules.lock``, version + 1. Independent of the generations: a build may
        run meanwhile."""
        from datetime import UTC, datetime

        rows = check_rule_rows(rules)
        self.path.mkdir(parents=True, exist_ok=True)
        with _rules_lock(self.path / RULES_LOCK):
            current = self.read()["version"]
            check_rules_version(current, expected_version)
            answer = rules_answer(current + 1, datetime.now(UTC).isoformat(timespec="seconds"), rows)
            tmp = self.path / f"{RULES_FILE}.{uuid.uuid4().hex[:8]}.tmp"
            try:
                with open(tmp, "w", encoding="utf-8") as f:
                    json.dump(answer, f, ensure_ascii=False, sort_keys=True, indent=1)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path / RULES_FILE)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            fsync_dir(self.path)
        return answer
