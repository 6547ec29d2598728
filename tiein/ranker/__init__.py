"""Complement ranking learnt from the shop's own baskets.

The hand-set complement score (:func:`tiein.relations.complement_score`: shrunk confidence ×
(1 − 1/lift) × category and title damping) has constants that suit no shop in particular, gives
staples (lift ≈ 1) nothing, and is not comparable across anchors, so summing it over a cart lets a
few items dominate. Instead, each build fits a small model of

    P(dst is in a basket | src is in it)

on a time split *inside* the shop's own orders, and the complement score becomes that
probability: calibrated (a cart's add-ons are ranked by the sum of the probabilities over its
items) and weighted for this shop.

How the fit works (:func:`fit_from_orders`, all deterministic: the same orders give the same
weights, so ``tiein update`` gives what a build gives):

1. split the baskets: the latest ``holdout_share`` of them by time (ties and baskets without a
   time by md5 of the order id) are the *label* baskets, the rest the *feature* baskets;
2. mine pair statistics from the feature baskets and build the same candidate features as a build
   (:func:`tiein.features.candidate_features`);
3. label every candidate src → dst whose src is in label baskets: ``k`` = label baskets holding
   both, ``n`` = label baskets holding src, each basket weighing 1 / its size (a binomial target:
   P(dst | src) with every basket counting once as a whole, as a cart does, instead of a
   500-product wholesale order counting as 250,000 pairs);
4. fit a logistic regression (Newton / IRLS with a small L2 penalty, numpy only) on the
   standardised :data:`FEATURES`; report the AUC on a held-out fifth of the anchors (by crc32 of
   the src id) next to the AUC of the hand-set score on the same rows.

Why logistic regression and not a gradient-boosted ranker: it gives probabilities (what summing
over a cart needs; a lambdarank score has no scale), it needs no new dependency, it fits in about
2 s on a million candidate pairs, it is deterministic, and its 21 weights can be read in the
build's meta (``complement_ranker``).

Fallback: a shop with fewer than ``min_positives`` labelled pairs bought together (or without
orders) keeps the documented hand-set score of :func:`tiein.relations.complement_score`; the meta
says ``{"fitted": false, "reason": ...}``.
"""

from tiein.ranker.model import (
    BASKET_UNIT,
    FEATURES,
    ComplementRanker,
    RankerConfig,
    _col,
    _sigmoid,
    auc,
    design_matrix,
    feature_dict,
    fit_logistic,
    fit_ranker,
)
from tiein.ranker.orders import (
    CART_EXPONENTS,
    CART_GAMMAS,
    CART_SIMILARITY,
    CartWeighting,
    _cart_weighting,
    cart_weight,
    choose_cart_weighting,
    fit_from_orders,
    round_significant,
    split_orders,
    with_basket_weights,
)

__all__ = [
    "BASKET_UNIT",
    "CART_EXPONENTS",
    "CART_GAMMAS",
    "CART_SIMILARITY",
    "FEATURES",
    "CartWeighting",
    "ComplementRanker",
    "RankerConfig",
    "_cart_weighting",
    "_col",
    "_sigmoid",
    "auc",
    "cart_weight",
    "choose_cart_weighting",
    "design_matrix",
    "feature_dict",
    "fit_from_orders",
    "fit_logistic",
    "fit_ranker",
    "round_significant",
    "split_orders",
    "with_basket_weights",
]
