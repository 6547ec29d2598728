"""The order of a lineup, as pure steps over the pool and a relation cache.

1. **Units.** Openers (the most-ordered traffic items, ``openers`` of them); then each hero (most
   orders first) as one unit with its best ``complements`` right after it (the store's complement
   order, merchant rules applied: blocked pairs never, pins first; in stock; not a hero; not a
   substitute of the hero or of another complement of it; from the pool unless ``extend_pool``)
   and, with ``compare``, one substitute of it from the pool as a comparison slot; after each hero
   unit one more traffic item holds the room while any is left; then the profit items, then the
   rest (regular items, traffic items left over, products without a sales role), each by orders.
2. **Layout.** Units are placed in that order, whole (a hero is never cut from its complements).
   The next unit placed is the first one that fits the slots left and does not start with a
   substitute of the previous slot (a comparison slot excepted) nor with a product a merchant rule
   blocks with it; when every unit that fits does, the first one goes and the slot is flagged. A 福利 (welfare) slot comes at the first unit boundary at or after every
   ``welfare_every_min`` minutes; the last slot is kept for the closing bundle.

Every tie is broken by product id; the same pool and store give the same lineup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tiein.graph.base import PRODUCT_FIELDS
from tiein.service.related import curated_related

if TYPE_CHECKING:
    from tiein.graph.base import GraphReader
    from tiein.lineup.pool import LineupOptions, Pool
    from tiein.rules import RuleSet

READ_K = 50  # relation rows read per product


@dataclass
class Entry:
    """One product slot to be: ``pid`` in ``role``; a complement / comparison names its ``hero``
    and the ``relation`` row; ``outside``: not from the pool; ``adjacent``: placed after a
    substitute because nothing else fitted."""

    pid: str
    role: str
    hero: str | None = None
    relation: dict[str, Any] | None = None
    outside: bool = False
    adjacent: bool = False


class Relations:
    """The complement and substitute rows of products, read once each (merchant rules applied
    to complements)."""

    def __init__(self, store: GraphReader, rules: RuleSet) -> None:
        self.store, self.rules = store, rules
        self._comp: dict[str, list[dict[str, Any]]] = {}
        self._subs: dict[str, dict[str, dict[str, Any]]] = {}

    def complements(self, pid: str) -> list[dict[str, Any]]:
        """``pid``'s complement rows, best first, none blocked with it by a merchant rule."""
        if pid not in self._comp:
            rows = curated_related(self.store, pid, "complement", READ_K, rules=self.rules)  # type: ignore[arg-type]
            self._comp[pid] = [r for r in rows if not self.rules.together_blocked(pid, r["product_id"])]
        return self._comp[pid]

    def substitutes(self, pid: str) -> dict[str, dict[str, Any]]:
        """``pid``'s substitute rows by product id."""
        if pid not in self._subs:
            self._subs[pid] = {r["product_id"]: r for r in self.store.related(pid, "substitute", READ_K)}
        return self._subs[pid]

    def subs(self, a: str, b: str) -> bool:
        """Whether ``a`` and ``b`` are substitutes (an edge either way)."""
        return a != b and (b in self.substitutes(a) or a in self.substitutes(b))

    def apart(self, prev: str, entry: Entry) -> bool:
        """Whether ``entry`` should not follow ``prev``: a substitute of it (unless the slot is a
        deliberate comparison) or a pair a merchant rule keeps apart."""
        if self.rules.together_blocked(prev, entry.pid):
            return True
        return entry.role != "compare" and self.subs(prev, entry.pid)

    def substitute_row(self, a: str, b: str) -> dict[str, Any] | None:
        return self.substitutes(a).get(b) or self.substitutes(b).get(a)

    def together(self, a: str, b: str) -> int | None:
        """Orders holding both when they are complements (either way, not blocked), else None."""
        for x, y in ((a, b), (b, a)):
            for r in self.complements(x):
                if r["product_id"] == y:
                    return int(r.get("n_ab") or 0)
        return None


def sales_role(product: dict[str, Any]) -> str:
    """traffic, hero or profit; every other product (regular, no role yet) is "regular"."""
    role = product.get("sales_role")
    return role if role in ("traffic", "hero", "profit") else "regular"


def relation_of(row: dict[str, Any], kind: str, hero: str) -> dict[str, Any]:
    return {"kind": kind, "with_id": hero, "score": row.get("score"), "evidence": row.get("evidence") or {}}


def units(
    pool: Pool,
    ready: list[str],
    opts: LineupOptions,
    rel: Relations,
    in_stock: Any,
) -> tuple[list[list[Entry]], dict[str, dict[str, Any]]]:
    """The lineup's units in priority order (see the module doc) over ``ready`` (the in-stock
    pool ids, most orders first), and the products added from outside the pool.
    ``in_stock(product)``: whether a product may be scheduled."""
    role = {p: sales_role(pool.products[p]) for p in ready}
    traffic = [p for p in ready if role[p] == "traffic"]
    heroes = [p for p in ready if role[p] == "hero"]
    used: set[str] = set()
    out: list[list[Entry]] = []
    added: dict[str, dict[str, Any]] = {}
    for p in traffic[: opts.openers]:
        out.append([Entry(p, "opener")])
        used.add(p)
    for h in heroes:
        unit = [Entry(h, "hero")]
        used.add(h)
        chosen: list[str] = []
        for row in rel.complements(h):
            c = row["product_id"]
            if len(chosen) >= opts.complements:
                break
            if c in used or c == h or role.get(c) == "hero":
                continue
            inside = c in pool.products
            if not inside and not opts.extend_pool:
                continue
            product = pool.products[c] if inside else {f: row.get(f) for f in PRODUCT_FIELDS}
            if not in_stock(product) or (inside and c not in role):
                continue
            if sales_role(product) == "hero" or rel.subs(h, c) or any(rel.subs(c, x) for x in chosen):
                continue
            chosen.append(c)
            used.add(c)
            if not inside:
                added[c] = product
            unit.append(Entry(c, "complement", h, relation_of(row, "complement", h), outside=not inside))
        if opts.compare:
            for s in ready:
                if s in used or role[s] == "hero" or not rel.subs(h, s):
                    continue
                row = rel.substitute_row(h, s) or {}
                unit.append(Entry(s, "compare", h, relation_of(row, "substitute", h)))
                used.add(s)
                break
        out.append(unit)
        hold = next((t for t in traffic if t not in used), None)
        if hold is not None:
            out.append([Entry(hold, "hold")])
            used.add(hold)
    for wanted in ("profit", None):
        for p in ready:
            if p not in used and (wanted is None or role[p] == wanted):
                out.append([Entry(p, "profit" if wanted else "regular")])
                used.add(p)
    return out, added


def layout(
    todo: list[list[Entry]], opts: LineupOptions, rel: Relations, welfare: list[str]
) -> tuple[list[Entry], list[Entry]]:
    """(the entries placed, in slot order, welfare slots included; the entries that found no
    slot) — see the module doc. The closing slot is not among them."""
    free = opts.slots - (1 if opts.closing_bundle and opts.slots >= 2 else 0)
    every = opts.welfare_every_min
    placed: list[Entry] = []
    remaining = list(todo)
    due = every
    shown = 0
    while remaining and free > 0:
        start = len(placed) * opts.slot_min
        if every and due is not None and start >= due and placed and welfare and free >= 2:
            placed.append(Entry(welfare[shown % len(welfare)], "welfare"))
            shown += 1
            free -= 1
            while due <= start:
                due += every
            continue
        fits = [u for u in remaining if len(u) <= free]
        if not fits:
            break
        prev = placed[-1].pid if placed else None
        pick = next((u for u in fits if prev is None or not rel.apart(prev, u[0])), None)
        if pick is None:
            pick = fits[0]
            pick[0].adjacent = True
        placed.extend(pick)
        remaining.remove(pick)
        free -= len(pick)
    return placed, [e for u in remaining for e in u]
