"""Applying rules to answers: the rules in force for a store (memoised briefly), pins first, blocks
out, boosts re-ranked."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from time import monotonic
from typing import TYPE_CHECKING, Any

from tiein.errors import ProductNotFound
from tiein.graph.base import RELATED_FIELDS
from tiein.rules.model import ANY_ANCHOR, DEFAULT_BOOST, PINNED_EN, PINNED_ZH, is_active, stored

if TYPE_CHECKING:
    from tiein.graph.base import GraphStore


# ----------------------------------------------------------------------------- applying rules
@dataclass
class RuleSet:
    """The rules in force at one moment, indexed for reads (:meth:`load` per request)."""

    version: int = 0
    blocks: set[tuple[str, str, str | None]] = field(default_factory=set)  # (anchor | *, item, kind | None)
    pins: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)  # (anchor, kind) -> rules
    boosts: dict[tuple[str, str, str], float] = field(default_factory=dict)  # (anchor, item, kind) -> factor
    pair_blocks: set[frozenset[str]] = field(default_factory=set)  # pairs never together in a bundle / cart
    item_blocks: set[str] = field(default_factory=set)  # items blocked for every anchor (complements)
    touched: set[tuple[str, str | None]] = field(default_factory=set)  # (anchor | *, kind | None) with a rule

    @classmethod
    def of(cls, rules: Iterable[Mapping[str, Any]], version: int = 0, now: datetime | None = None) -> RuleSet:
        out = cls(version=version)
        for raw in rules:
            r = stored(raw)
            if not is_active(r, now):
                continue
            a, i, kind = r["anchor"], r["item"], r["kind"]
            out.touched.add((a, kind))
            if r["action"] == "block":
                out.blocks.add((a, i, kind))
                if kind in (None, "complement"):
                    if a == ANY_ANCHOR:
                        out.item_blocks.add(i)
                    else:
                        out.pair_blocks.add(frozenset((a, i)))
            elif r["action"] == "pin":
                out.pins.setdefault((a, kind), []).append(r)
            elif r["action"] == "boost":
                out.boosts[(a, i, kind)] = out.boosts.get((a, i, kind), 1.0) * float(
                    r["boost"] or DEFAULT_BOOST
                )
        for pins in out.pins.values():
            pins.sort(key=lambda r: (r["position"] is None, r["position"] or 0, r["rule_id"] or 0))
        return out

    @classmethod
    def load(cls, store: GraphStore, now: datetime | None = None) -> RuleSet:
        """The store's rules in force now. Without ``now``, memoised per store for
        :data:`RULES_TTL_S` (a rule change made through this process — :func:`import_rules`,
        :func:`remove_rules` — is seen at once, one made by another process within that time),
        so a batch export or a busy server does not re-read the rules per answer."""
        read = getattr(store, "rules", None)
        if read is None:  # a reader without rules (an older or a test double): none apply
            return cls()
        if now is not None:
            answer = read()
            return cls.of(answer["rules"], answer["version"], now)
        tick = monotonic()
        try:
            cached = _LOADED.get(store)
        except TypeError:  # not weak-referenceable: no memo
            cached = None
        if cached is not None and tick - cached[0] < RULES_TTL_S:
            return cached[1]
        answer = read()
        loaded = cls.of(answer["rules"], answer["version"])
        with contextlib.suppress(TypeError):
            _LOADED[store] = (tick, loaded)
        return loaded

    def __bool__(self) -> bool:
        return bool(self.blocks or self.pins or self.boosts)

    def touches(self, anchor: str, kind: str) -> bool:
        """Whether any rule may change ``anchor``'s ``kind`` rows."""
        t = self.touched
        return bool(t) and any((a, k) in t for a in (anchor, ANY_ANCHOR) for k in (kind, None))

    def blocked(self, anchor: str, item: str, kind: str) -> bool:
        """Whether ``item`` must not appear among ``anchor``'s ``kind`` rows."""
        return any((a, item, k) in self.blocks for a in (anchor, ANY_ANCHOR) for k in (kind, None))

    def together_blocked(self, a: str, b: str) -> bool:
        """Whether ``a`` and ``b`` may not be in one bundle or cart suggestion (either way)."""
        return frozenset((a, b)) in self.pair_blocks or a in self.item_blocks or b in self.item_blocks

    def curate(
        self,
        anchor: str,
        kind: str,
        rows: list[dict[str, Any]],
        product: Callable[[str], dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """``rows`` (a store's ``related`` rows of ``anchor``, best first) with the rules applied:
        blocked items out, boosted scores multiplied and the rows re-sorted (score descending,
        then product_id), pinned items first in pin order (``pinned``: True, ``rule_id``; an item
        the graph does not relate gets the row of ``product(item)`` with score 0 and no
        evidence; an item no longer in the graph is left out)."""
        out = []
        boosted = False
        for row in rows:
            pid = row["product_id"]
            if self.blocked(anchor, pid, kind):
                continue
            factor = self.boosts.get((anchor, pid, kind))
            if factor is not None:
                row = {**row, "score": float(row["score"]) * factor, "boost": factor}
                boosted = True
            out.append(row)
        if boosted:
            out.sort(key=lambda r: (-float(r["score"]), r["product_id"]))
        pins = self.pins.get((anchor, kind))
        if not pins:
            return out
        by_id = {r["product_id"]: r for r in out}
        first: list[dict[str, Any]] = []
        for rule in pins:
            pid = rule["item"]
            if self.blocked(anchor, pid, kind) or any(p["product_id"] == pid for p in first):
                continue
            found = by_id.get(pid)
            if found is None:
                try:
                    found = pinned_row(product(pid), kind)
                except ProductNotFound:
                    continue
            first.append({**found, "pinned": True, "rule_id": rule["rule_id"]})
        taken = {p["product_id"] for p in first}
        return first + [r for r in out if r["product_id"] not in taken]


# RuleSet.load's memo: store -> (monotonic time read, rules in force); validity windows are
# re-checked at each read, i.e. at most RULES_TTL_S late
RULES_TTL_S = 1.0
_LOADED: weakref.WeakKeyDictionary[Any, tuple[float, RuleSet]] = weakref.WeakKeyDictionary()


def forget(store: Any) -> None:
    """Drop ``store``'s memoised rules (after a change through this process)."""
    with contextlib.suppress(TypeError):
        _LOADED.pop(store, None)


def pinned_row(product: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """A related row for a pinned product the graph does not relate to the anchor."""

    row = {**product, **dict.fromkeys(RELATED_FIELDS)}
    row.update(kind=kind, score=0.0, evidence={})
    return row


def pinned_explanation() -> dict[str, str]:
    """The explanation of a pinned row."""
    return {"zh": PINNED_ZH, "en": PINNED_EN}
