"""Managing the stored rules: list them (with what is in force now), import (add or replace,
versioned) and remove."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tiein.errors import ConfigError
from tiein.rules.apply import forget
from tiein.rules.files import rows_to_rules
from tiein.rules.model import ANY_ANCHOR, MAX_RULES, is_active, rule_key, stored

if TYPE_CHECKING:
    from tiein.graph.base import GraphStore


# ----------------------------------------------------------------------------- managing rules
def rules_payload(
    store: GraphStore, *, anchor: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """``{"version", "updated_at", "count", "active", "rules": [rule + "active"]}``, optionally
    only the rules of one ``anchor`` (those of ``*`` included)."""
    read = getattr(store, "rules", None)
    answer = read() if read is not None else {"version": 0, "updated_at": None, "rules": []}
    rules = [stored(r) for r in answer["rules"]]
    if anchor is not None:
        rules = [r for r in rules if r["anchor"] in (anchor, ANY_ANCHOR)]
    listed = [{**r, "active": is_active(r, now)} for r in rules]
    return {
        "version": answer["version"],
        "updated_at": answer["updated_at"],
        "count": len(listed),
        "active": sum(r["active"] for r in listed),
        "rules": listed,
    }


def import_rules(
    store: GraphStore,
    rules: Sequence[Mapping[str, Any]],
    *,
    replace: bool = False,
    expected_version: int | None = None,
) -> dict[str, Any]:
    """Add ``rules`` (normalised, :func:`normalize_rule` / :func:`read_rules_file`) to the
    store's: a rule for an anchor, item and kind that already has one replaces it (keeping its
    id); ``replace``: the given rules become the whole set. Returns ``{"version", "added",
    "updated", "removed", "count"}``."""
    incoming = rows_to_rules(rules)  # checked (again), the last per anchor, item and kind wins
    current = store.rules()
    version = current["version"] if expected_version is None else expected_version
    old = {rule_key(stored(r)): stored(r) for r in current["rules"]}
    next_id = max((r["rule_id"] for r in current["rules"]), default=0) + 1
    merged: dict[tuple[str, str, str | None], dict[str, Any]] = {} if replace else dict(old)
    added = updated = 0
    for rule in incoming:
        key = rule_key(rule)
        before = old.get(key)
        if before is not None:
            rule = {**rule, "rule_id": before["rule_id"]}
            updated += before != rule
        else:
            rule = {**rule, "rule_id": next_id}
            next_id += 1
            added += 1
        merged[key] = rule
    removed = len(old.keys() - merged.keys())
    if len(merged) > MAX_RULES:
        raise ConfigError(f"{len(merged):,} rules; at most {MAX_RULES:,}")
    saved = store.save_rules(list(merged.values()), expected_version=version)
    forget(store)
    return {
        "version": saved["version"],
        "added": added,
        "updated": updated,
        "removed": removed,
        "count": len(saved["rules"]),
    }


def remove_rules(
    store: GraphStore,
    *,
    ids: Iterable[int] = (),
    anchor: str | None = None,
    item: str | None = None,
    remove_all: bool = False,
    expected_version: int | None = None,
) -> dict[str, Any]:
    """Remove rules by id, by anchor (and item), or all. ConfigError when nothing selects rules;
    NotFound-like ConfigError for ids that do not exist. Returns ``{"version", "removed",
    "count"}``."""
    wanted = {int(i) for i in ids}
    if not (wanted or anchor or item or remove_all):
        raise ConfigError("say which rules to remove: ids, an anchor (and item), or all")
    current = store.rules()
    rules = [stored(r) for r in current["rules"]]
    missing = wanted - {r["rule_id"] for r in rules}
    if missing:
        raise ConfigError(
            f"no rule with id {', '.join(str(i) for i in sorted(missing))} (see `tiein rules list`)"
        )

    def goes(r: dict[str, Any]) -> bool:
        if remove_all or r["rule_id"] in wanted:
            return True
        if anchor is None and item is None:
            return False
        return (anchor is None or r["anchor"] == anchor) and (item is None or r["item"] == item)

    keep = [r for r in rules if not goes(r)]
    removed = len(rules) - len(keep)
    version = current["version"] if expected_version is None else expected_version
    if removed == 0 and expected_version is None:
        return {"version": current["version"], "removed": 0, "count": len(rules)}
    saved = store.save_rules(keep, expected_version=version)
    forget(store)
    return {"version": saved["version"], "removed": removed, "count": len(keep)}
