"""Scenario bundles and cart add-ons over any graph store (tiein.graph.base.GraphStore).

A shopper picked an *anchor* (a tent); :func:`bundle` offers 1-2 *complements* of it (a chair,
a lamp) as a bundle with a sayable bundle price; :func:`addons` offers complements of a whole cart
and, with a free-shipping threshold, the cheapest items that lift the cart over it.

Merchants' rules (:class:`BundleRules`, defaults from practice):

- only complements; never a substitute of the anchor, never two items that are substitutes of
  each other (checked both ways, against every substitute the graph holds: the anchor's, every
  chosen item's and each candidate's own);
- each add-on priced ``min_price_ratio``-``max_price_ratio`` (30-80 %) of the anchor, or at the
  anchor's own price (``same_price_ok``: a one-price shop still gets bundles); the band applies
  only to a pair whose prices are both known, an unpriced anchor or item skips it;
- only items in stock (stock null = unknown = allowed, stock <= 0 excluded);
- at most ``max_per_category`` items per leaf category, the anchor's category included;
- an optional budget the bundle total must not exceed;
- an optional sales-role ``mix`` (hero + profit): the n-th add-on must have the n-th sales role.

Selection is greedy: candidates in complement-score order (the store's order), each checked
against the anchor and the items already chosen. Complements of the anchor come first; when they
run out, complements of the chosen items follow ("complement of chair"). Scenes drive the order:
with ``scene`` (or, by default, the scene the anchor belongs to) the slots are the scene's roles
in order, each filled by the best candidate that is a member of that role (Scene nodes,
``IN_SCENE {role, weight}``, docs/schema.md); ``roles`` does the same with sets of category
names or product ids. A role nothing can fill is skipped and listed in ``skipped_roles``.

Store round trips per bundle (embedded store: one statement each, ~0.1-0.5 ms):
``bundle_candidates(anchor)`` (3 statements: the anchor with its scenes, its complements, the
substitute ids of the anchor and of each complement), plus, when a scene is followed,
``scene_summary`` (2) and one ``scene_roles_of`` for the candidates; the complements of a chosen
item cost one more ``bundle_candidates`` only when the anchor's run out. No separate existence
checks, every list read once per request.

Unpriced bundles: when the anchor or an item has no price, the bundle is still made but has no
price maths: ``priced`` is False, ``total`` / ``suggested_price`` / ``saving`` are None and the pitch
says the prices are at checkout (:func:`unpriced_pitch`). With a ``budget``, an unpriced anchor
gives no bundle (``anchor_price_unknown``) and unpriced items are passed over (``price_unknown``):
the budget could not be checked.

Price rounding (:func:`charm_price`): the suggested bundle price is the largest *sayable* price at
or below ``total × (1 − discount)``, trying in order a whole number ending in ``charm_digit``
(…8: 398, 468), a whole ten (470), a whole number (47), one decimal (13.5); the first that is
no more than ``rounding_slack × total`` (3 %) below the discounted price wins, so rounding never
gives away more than 3 % on top of the discount and small totals stay exact.

Modules, in data-flow order: :mod:`~tiein.bundles.rules` (rules and argument checks),
:mod:`~tiein.bundles.candidates` (memoised store reads, scene choice),
:mod:`~tiein.bundles.selection` (greedy add-on choice), :mod:`~tiein.bundles.pricing` (price band,
sayable price, pitch), :mod:`~tiein.bundles.assembly` (:func:`bundle`), :mod:`~tiein.bundles.cart`
(:func:`addons`), :mod:`~tiein.bundles.results` and :mod:`~tiein.bundles.reasons` (the answers).
"""

from __future__ import annotations

from tiein.bundles.assembly import bundle
from tiein.bundles.cart import addons
from tiein.bundles.pricing import _in_band, charm_price, pitch, price_maths, unpriced_pitch
from tiein.bundles.reasons import REASONS, SKIP_ORDER, SKIP_REASON, Reason
from tiein.bundles.results import AddonItem, Addons, Bundle, BundleItem, Product, Row
from tiein.bundles.rules import BundleRules

__all__ = [
    "REASONS",
    "SKIP_ORDER",
    "SKIP_REASON",
    "AddonItem",
    "Addons",
    "Bundle",
    "BundleItem",
    "BundleRules",
    "Product",
    "Reason",
    "Row",
    "addons",
    "bundle",
    "charm_price",
    "pitch",
    "price_maths",
    "unpriced_pitch",
]

# `doctest.testmod(tiein.bundles)` (tests/test_bundles.py) runs the examples of the submodules too
__test__ = {f.__name__: f for f in (charm_price, pitch, unpriced_pitch, _in_band)}
