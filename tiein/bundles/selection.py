"""Greedy add-on selection for one bundle: each candidate checked against the anchor and the
items already chosen, under the merchant's rules.

Third step of the bundle data flow, between the candidate reads (:mod:`tiein.bundles.candidates`)
and the assembled answer (:mod:`tiein.bundles.assembly`). A :class:`_Picker` holds one request's
selection state explicitly (chosen items, the running total, categories taken, substitute lists
merged so far, why each candidate was passed over); :meth:`_Picker.take` fills one slot with the
first complement, in the store's score order, that passes :meth:`_Picker.check`. Complements of
the anchor come first, then complements of the items chosen.
"""

from __future__ import annotations

from collections import Counter

from tiein.bundles.candidates import _category_key, _Graph, _in_stock, _role_names, _Slot
from tiein.bundles.pricing import _in_band, _price
from tiein.bundles.reasons import SKIP_ORDER
from tiein.bundles.results import Product, Row
from tiein.bundles.rules import BundleRules

Chosen = tuple[Row, str, str | None]  # (row, source product id, role label)


class _Picker:
    """The add-ons chosen so far for one anchor, and the rules each next one must pass.

    ``chosen``: (row, source id, role) in order; ``skipped``: candidate id -> the furthest
    SKIP_ORDER check it failed; ``total``: the sum of the known prices (a budget is only checked
    when all are known); ``sources``: the products whose complements are candidates (the anchor,
    then each chosen item)."""

    def __init__(
        self,
        g: _Graph,
        anchor: Product,
        rules: BundleRules,
        budget: float | None,
        wanted: list[str] | None,
        scene_id: str | None,
    ) -> None:
        self.g = g
        self.rules = rules
        self.budget = budget
        self.wanted = wanted  # sales roles, in add-on order
        self.scene_id = scene_id  # the scene whose roles the slots are, if any
        self.anchor_id: str = anchor["product_id"]
        self.anchor_price = _price(anchor)
        self.chosen: list[Chosen] = []
        self.skipped: dict[str, str] = {}
        self.total = self.anchor_price or 0.0
        self.categories: Counter[str] = Counter()
        if (cat := _category_key(anchor)) is not None:
            self.categories[cat] += 1
        self.anchor_subs = g.substitutes(self.anchor_id) if rules.exclude_substitutes else set()
        self.chosen_subs: set[str] = set()
        self.pending_subs: list[str] = []  # chosen items whose substitute lists are not merged yet
        self.sources: list[Product] = [anchor]

    def fill(self, n: int) -> None:
        """Take add-ons in score order, no role asked, until there are ``n`` or none is left."""
        while len(self.chosen) < n and self.take(None):
            pass

    def take(self, slot: _Slot | None) -> bool:
        """Choose the first candidate that passes every check (and fills ``slot``, if given);
        False when none does."""
        taken = {self.anchor_id, *(r["product_id"] for r, _, _ in self.chosen)}
        i = 0
        while i < len(self.sources):  # sources grows as items are chosen
            source = self.sources[i]
            i += 1
            rows = self.g.complements(source["product_id"])
            if self.scene_id is not None and slot is not None:  # stores that leave scene_roles out: one read
                self.g.prefetch_roles(
                    self.scene_id, [r["product_id"] for r in rows if "scene_roles" not in r]
                )
            for row in rows:
                pid = row["product_id"]
                if pid in taken or self.g.blocked_with(pid, taken):  # a merchant rule keeps them apart
                    continue
                code = self.check(row, slot)
                if code is not None:
                    self._passed_over(pid, code)
                    continue
                self._choose(row, source["product_id"], slot)
                return True
        return False

    def take_pinned(self, n: int) -> None:
        """Choose the anchor's complements a merchant pinned (in pin order) that pass every
        check, before any slot is filled, until there are ``n``."""
        for row in self.g.complements(self.anchor_id):
            if len(self.chosen) >= n:
                return
            if not row.get("pinned"):
                continue
            pid = row["product_id"]
            taken = {self.anchor_id, *(r["product_id"] for r, _, _ in self.chosen)}
            if pid in taken or self.g.blocked_with(pid, taken):
                continue
            code = self.check(row, None)
            if code is not None:
                self._passed_over(pid, code)
                continue
            self._choose(row, self.anchor_id, None)

    def check(self, row: Row, slot: _Slot | None) -> str | None:
        """The first rule ``row`` breaks (a SKIP_ORDER code), or None when it may join."""
        rules, budget = self.rules, self.budget
        pid = row["product_id"]
        if pid in self.anchor_subs:
            return "substitute_of_anchor"
        if rules.require_in_stock and not _in_stock(row):
            return "out_of_stock"
        price = _price(row)
        if not _in_band(price, self.anchor_price, rules):
            return "outside_price_band"
        if slot is not None and not self._role_ok(row, slot):
            return "role_mismatch"
        if self.wanted and row.get("sales_role") != self.wanted[len(self.chosen)]:
            return "sales_role_mismatch"
        cat = _category_key(row)
        if cat is not None and self.categories[cat] >= rules.max_per_category:
            return "category_taken"
        while self.pending_subs:
            self.chosen_subs.update(self.g.substitutes(self.pending_subs.pop()))
        if pid in self.chosen_subs:
            return "substitute_of_chosen"
        if budget is not None and price is None:
            return "price_unknown"
        if budget is not None and price is not None and self.total + price > budget + 1e-9:
            return "over_budget"
        if rules.exclude_substitutes and rules.reverse_substitutes:
            theirs = self.g.substitutes(pid)  # the other direction: does it name the anchor / a chosen item?
            if self.anchor_id in theirs:
                return "substitute_of_anchor"
            if any(r["product_id"] in theirs for r, _, _ in self.chosen):
                return "substitute_of_chosen"
        return None

    def _role_ok(self, row: Row, slot: _Slot) -> bool:
        if self.scene_id is not None and slot.scene_role is not None:
            known = row.get("scene_roles")  # brought by bundle_candidates, else one lookup per list
            role = (
                known.get(self.scene_id)
                if known is not None
                else self.g.scene_role(self.scene_id, row["product_id"])
            )
            return role == slot.scene_role
        return bool(slot.names & _role_names(row))

    def _passed_over(self, pid: str, code: str) -> None:
        """Record why ``pid`` was passed over, keeping the furthest check it reached."""
        prev = self.skipped.get(pid)
        if prev is None or SKIP_ORDER.index(code) > SKIP_ORDER.index(prev):
            self.skipped[pid] = code

    def _choose(self, row: Row, source_id: str, slot: _Slot | None) -> None:
        pid = row["product_id"]
        self.skipped.pop(pid, None)
        self.chosen.append((row, source_id, slot.label if slot else _category_key(row)))
        self.total += _price(row) or 0.0
        if (cat := _category_key(row)) is not None:
            self.categories[cat] += 1
        if self.rules.exclude_substitutes:
            self.pending_subs.append(pid)
        self.sources.append(row)
