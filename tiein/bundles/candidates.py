"""Candidate reads for a bundle or a cart: memoised store reads, product checks, scene choice.

Second step of the bundle data flow: :class:`_Graph` reads each product's fields, scenes,
complements and substitute lists from the store once per request (``bundle_candidates``, plus
``scene_summary`` / ``scene_roles_of`` when a scene is followed); :func:`_pick_scene` chooses the
scene a bundle follows and the :class:`_Slot` roles to fill; the small product checks (stock,
category, role names) are shared by bundles and cart add-ons.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tiein.bundles.results import Product, Row
from tiein.segments import Segment, context_rerank, store_segment

if TYPE_CHECKING:
    from datetime import date

    from tiein.graph.base import GraphStore
    from tiein.model import QueryContext
    from tiein.rules import Filters, RuleSet


def _in_stock(p: Mapping[str, Any]) -> bool:
    stock = p.get("stock")
    return stock is None or stock > 0


def _category_key(p: Mapping[str, Any]) -> str | None:
    """What "one per category" counts: the category, else the build's product type (a catalog
    without categories still gets one lunch bag per bundle, not three)."""
    return p.get("category") or p.get("category_path") or p.get("product_type") or None


def _cart_category_key(p: Mapping[str, Any]) -> str | None:
    """What add-ons' "at most n per category" counts: the catalog's own category only (product
    types learnt from titles are finer: two lunch bags in a cart's suggestions are what shoppers
    of a giftware shop take; measured, limiting them lost 0.03 of Online Retail's cart HR@10)."""
    return p.get("category") or p.get("category_path") or None


def _role_names(p: Mapping[str, Any]) -> set[str]:
    """Names a role can use for ``p``: its id, leaf category, category path and path leaf."""
    names = {str(p["product_id"])}
    for key in ("category", "category_path"):
        v = p.get(key)
        if v:
            names.add(str(v))
            names.add(str(v).split(" > ")[-1])
    return {n.strip().casefold() for n in names}


class _Graph:
    """Memoised store reads for one request: one ``bundle_candidates`` call per product gives its
    fields, scenes, complements and every substitute list a bundle checks; scene roles are read
    once per product and scene. With a query date ``at`` each product's complements are ranked
    for that date (:func:`tiein.season.seasonal_rerank`: rows gain ``season_weight``), and for a
    known customer ``segment`` by its lift there (:mod:`tiein.segments`: ``segment_weight``)."""

    def __init__(
        self,
        store: GraphStore,
        k: int,
        curation: RuleSet | None = None,
        filters: Filters | None = None,
        at: date | None = None,
        segment: Segment | None = None,
    ) -> None:
        self.store = store
        self.k = k
        self.at = at  # the query date seasonal complements are ranked for (None: year-round)
        self.segment = segment  # the customer segment they are ranked for (tiein.segments)
        self.curation = curation  # merchant rules: pins first, blocked pairs never together
        self.filters = filters  # the caller's filters on the add-ons
        self._cand: dict[str, dict[str, Any]] = {}
        self._subs: dict[str, set[str]] = {}
        self._roles: dict[tuple[str, str], str | None] = {}
        self._curated: dict[str, list[Row]] = {}

    @classmethod
    def for_context(
        cls,
        store: GraphStore,
        k: int,
        curation: RuleSet | None,
        filters: Filters | None,
        context: QueryContext | None,
    ) -> _Graph:
        """A reader for one request: its date and (resolved) customer segment from ``context``."""
        if context is None:
            return cls(store, k, curation, filters)
        return cls(store, k, curation, filters, context.at, store_segment(store, context.segment))

    def candidates(self, pid: str) -> dict[str, Any]:
        if pid not in self._cand:
            c = self.store.bundle_candidates(pid, self.k)
            if self.at is not None or (self.segment is not None and self.segment.known):
                c = {**c, "complements": context_rerank(list(c["complements"]), self.at, self.segment)}
            self._cand[pid] = c
            self._subs.setdefault(c["product"]["product_id"], set(c["substitutes"]))
            for r in c["complements"]:
                self._subs.setdefault(r["product_id"], set(r["substitutes"]))
        return self._cand[pid]

    def product(self, pid: str) -> Product:
        return dict(self.candidates(pid)["product"])

    def scenes(self, pid: str) -> list[dict[str, Any]]:
        return list(self.candidates(pid)["scenes"])

    def complements(self, pid: str) -> list[Row]:
        """``pid``'s complements in score order; with merchant rules, pinned ones first (rows
        marked ``pinned``) and none blocked with ``pid``; with filters, only those passing."""
        if self.curation is None and self.filters is None:
            return list(self.candidates(pid)["complements"])
        if pid not in self._curated:
            rows = list(self.candidates(pid)["complements"])
            rules = self.curation
            if rules:
                rows = rules.curate(pid, "complement", rows, self.store.product)
                rows = [r for r in rows if not rules.together_blocked(pid, r["product_id"])]
            if self.filters is not None and self.filters.narrows:
                rows = self.filters.keep(rows)
            self._curated[pid] = rows
        return list(self._curated[pid])

    def blocked_with(self, pid: str, others: Iterable[str]) -> bool:
        """Whether a merchant rule keeps ``pid`` apart from one of ``others``."""
        rules = self.curation
        return bool(rules) and any(rules.together_blocked(pid, o) for o in others if o != pid)  # type: ignore[union-attr]

    def substitutes(self, pid: str) -> set[str]:
        if pid not in self._subs:
            self.candidates(pid)
        return self._subs[pid]

    def prefetch_roles(self, scene_id: str, pids: Iterable[str]) -> None:
        todo = [p for p in dict.fromkeys(pids) if (scene_id, p) not in self._roles]
        if todo:
            found = self.store.scene_roles_of(scene_id, todo)
            for p in todo:
                self._roles[(scene_id, p)] = found.get(p)

    def scene_role(self, scene_id: str, pid: str) -> str | None:
        self.prefetch_roles(scene_id, [pid])
        return self._roles[(scene_id, pid)]


@dataclass(frozen=True)
class _Slot:
    """A role to fill: a set of category names / product ids (``roles=``) or a scene role."""

    label: str
    names: frozenset[str] = frozenset()  # casefolded; empty for a scene role
    scene_role: str | None = None


def _pick_scene(g: _Graph, anchor_id: str, scene: str | None) -> tuple[dict[str, Any] | None, list[str]]:
    """The scene a bundle follows and the roles to fill, in order.

    ``scene`` given: that scene (NotFound if unknown), every role but the anchor's own, in the
    scene's order. Not given: among the anchor's scenes the one where its role comes earliest,
    then the larger scene, then scene_id; the roles after the anchor's own, then (wrapping round)
    the ones before it. (None, []) when the anchor is in no scene or that scene has no other
    named role (a bundle then goes by score)."""
    mine = g.scenes(anchor_id)
    if scene is not None:
        summary = g.store.scene_summary(scene)
        own = next((r["role"] for r in mine if r["scene_id"] == summary["scene_id"]), None)
        return summary, [r for r in summary["roles"] if r is not None and r != own]
    if not mine:
        return None, []
    first = mine[0]["weight"]
    tied = [r for r in mine if r["weight"] == first]
    summaries = [g.store.scene_summary(r["scene_id"]) for r in tied]
    summary = min(summaries, key=lambda s: (-int(s["members"]), s["scene_id"]))
    own = next(r["role"] for r in tied if r["scene_id"] == summary["scene_id"])
    names = [r for r in summary["roles"] if r is not None]
    if own in names:
        i = names.index(own)
        names = names[i + 1 :] + names[:i]
    return (summary, names) if names else (None, [])
