"""The candidate pairs and their features, and each product's strongest pair edges, in numpy.

:func:`tiein.features.candidate_features` and :func:`tiein.features.top_pairs` take their rows
from here. DuckDB queries answered before; the candidates' query stays in tiein.features as the
definition these kernels follow row for row (and as the way with content sets), the pair edges'
in ``tests/test_candidate_pairs.py``, which compares both ways on random shops and on Online
Retail: the same rows in the same order with the same values and nulls. Every product id is an
integer code in the ids' string order (:func:`tiein.features._coded`), so a directed pair is one
int64 key ``src * n + dst`` and "ORDER BY src, dst" is a sort of that key. A ranking within each
product ("its best 60 partners") is not a sort of every directed pair: the pair tables stay
undirected (:class:`_Pairs`) and the compiled :func:`tiein.candidate_jit.top_partners` takes both
ways of each row at once; only the candidates get directed columns. One core, where the queries
took two: a call on Online Retail 2.2-2.6 s -> 0.57-0.62 s (sorting packed keys: 1.2-1.7 s) and
~0.3 GB at its peak instead of ~0.8.

SQL's three-valued logic is kept where a column can be null: ``same_line`` and ``same_type`` are
nullable booleans exactly where the query's ``AND`` / ``OR`` gave NULL.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tiein.mining.kernels import sorted_unique
from tiein.mining.keyset import KeySet
from tiein.mining.packed import desc_rank, first_k, packed_order, sorted_keys


def _ints(table: pa.Table, name: str) -> np.ndarray:
    """An integer column as int64, nulls as 0 (the query's ``coalesce(…, 0)``)."""
    return cast(np.ndarray, pc.fill_null(table.column(name), 0).to_numpy().astype(np.int64, copy=False))


def _floats(table: pa.Table, name: str) -> np.ndarray:
    """A float column as float64, nulls as 0.0 (the query's ``coalesce(…, 0.0)``)."""
    return cast(np.ndarray, pc.fill_null(table.column(name).cast(pa.float64()), 0.0).to_numpy())


def _found(keys: np.ndarray, rows: np.ndarray | None, query: np.ndarray) -> np.ndarray:
    """For each of ``query``, ``rows[i]`` (None: ``i`` itself) where the sorted unique ``keys[i]``
    equals it, else -1 (a LEFT JOIN)."""
    if keys.size == 0:
        return np.full(query.size, -1, np.int64)
    pos = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    return np.where(keys[pos] == query, pos if rows is None else rows[pos], -1)


def _take(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``values[rows]``, 0 where a row is -1 (the query's ``coalesce(…, 0)``)."""
    if values.size == 0:
        return np.zeros(rows.size, values.dtype)
    return np.where(rows >= 0, values[rows], np.zeros(1, values.dtype))


def _codes(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Equal values, equal codes; null is -1."""
    return _encoded(col)[0]


def _encoded(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    """:func:`_codes` and the values they stand for (``values[code]``)."""
    enc = pc.dictionary_encode(col)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    codes = pc.fill_null(enc.indices, -1).to_numpy().astype(np.int64, copy=False)
    return cast(np.ndarray, codes), enc.dictionary


class _Products:
    """The product frame's columns by product code (``n`` codes; codes of no product: absent)."""

    def __init__(self, prod: pa.Table, n: int) -> None:
        code = prod.column("product_id").to_numpy()
        self.present = np.zeros(n, bool)
        self.present[code] = True

        def by_code(values: np.ndarray, fill: object) -> np.ndarray:
            out = np.full(n, fill, dtype=values.dtype)
            out[code] = values
            return out

        self.category = by_code(_codes(prod.column("category_path")), -1)
        self.parent = by_code(_codes(prod.column("parent")), -1)
        self.line = by_code(_codes(prod.column("line")), -1)
        self.ptype = by_code(_codes(prod.column("ptype")), -1)
        self.branded = by_code(pc.is_valid(prod.column("brand")).to_numpy(zero_copy_only=False), False)
        price = pc.fill_null(prod.column("price").cast(pa.float64()), np.nan).to_numpy()
        self.price = by_code(price, np.nan)
        at = np.full(n, -1, np.int64)  # the product frame's row of each code
        at[code] = np.arange(code.size)
        slot = pa.array(at, mask=at < 0)
        self.wtitle = prod.column("wtitle").combine_chunks().take(slot)  # by code, null: no product
        self.phead = prod.column("phead").combine_chunks().take(slot)


def _has_nan(col: pa.ChunkedArray) -> bool:
    """Whether a float column holds NaN (not null: null is no value)."""
    return pa.types.is_floating(col.type) and bool(pc.any(pc.is_nan(col)).as_py())


class _Words:
    """Which words each product's padded title holds (`` LUNCH BAG RED ``), as sorted packed
    (word, product) keys: for a one-word type head (`` BAG ``) and such a title, SQL's
    ``contains(title, head)`` is "the head's word is one of the title's words", a lookup instead
    of a substring search per pair (tiein.product_type.type_keys pads both this way)."""

    def __init__(self, titles: pa.Array, heads: pa.Array) -> None:
        self.n = np.int64(len(titles))
        vocab: dict[str, int] = {}
        word_of: list[int] = []
        product_of: list[int] = []
        self.padded = np.zeros(len(titles), bool)
        for code, title in enumerate(titles.to_pylist()):
            words = _padded_words(title)
            if words is None:
                continue
            self.padded[code] = True
            for w in words:
                word_of.append(vocab.setdefault(w, len(vocab)))
                product_of.append(code)
        self.keys = KeySet(
            sorted_unique(np.array(word_of, np.int64) * self.n + np.array(product_of, np.int64))
        )
        self.head_word = np.full(len(heads), -1, np.int64)  # -1: not a one-word head
        for code, head in enumerate(heads.to_pylist()):
            words = _padded_words(head)
            if words is not None and len(words) == 1:
                self.head_word[code] = vocab.get(words[0], len(vocab))  # a word no title has

    def holds(self, title: np.ndarray, head: np.ndarray) -> np.ndarray:
        """Whether the padded title of each product ``title[i]`` holds the one-word head of
        product ``head[i]`` (both must be of that form: :attr:`padded`, :attr:`head_word`)."""
        return self.keys.contains(self.head_word[head] * self.n + title)


def _padded_words(text: str | None) -> list[str] | None:
    """The words of `` A B C `` (one space around and between non-empty words), else None."""
    if not text or len(text) < 3 or text[0] != " " or text[-1] != " ":
        return None
    words = text[1:-1].split(" ")
    return words if all(words) else None


def _contains(
    hay: pa.Array, needle: pa.Array, words: _Words, h: np.ndarray, n: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """SQL ``contains(hay[h[i]], needle[n[i]])`` per row i: the value and where it is null. A
    one-word head in a padded title is a word lookup (:class:`_Words`); the rest (Chinese types,
    titles as they are) a substring search, one Arrow match per distinct needle when they repeat."""
    null = (
        ~pc.is_valid(hay).to_numpy(zero_copy_only=False)[h]
        | ~pc.is_valid(needle).to_numpy(zero_copy_only=False)[n]
    )
    value = np.zeros(h.size, bool)
    by_word = ~null & words.padded[h] & (words.head_word[n] >= 0)
    value[by_word] = words.holds(h[by_word], n[by_word])
    rows = np.flatnonzero(~null & ~by_word)
    if rows.size == 0:
        return value, null
    rows = rows[packed_order([n[rows]])]  # grouped by needle
    groups = n[rows]
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    if starts.size * 16 > rows.size:  # needles hardly repeat: one Python test a row
        hays, needles = hay.take(pa.array(h[rows])).to_pylist(), needle.take(pa.array(groups)).to_pylist()
        value[rows] = np.fromiter((s in t for t, s in zip(hays, needles, strict=True)), bool, rows.size)
        return value, null
    ends = np.r_[starts[1:], rows.size]
    taken = hay.take(pa.array(h[rows]))
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        pattern = needle[int(groups[start])].as_py()
        hit = pc.match_substring(taken.slice(start, end - start), pattern)
        value[rows[start:end]] = hit.to_numpy(zero_copy_only=False)
    return value, null


def _same_type(p: _Products, s: np.ndarray, d: np.ndarray) -> pa.Array:
    """The query's ``same_type``: null without both types; the types' equality where both have a
    category path; else equal types, or either title holding the other's type head."""
    ts, td = p.ptype[s], p.ptype[d]
    null = (ts < 0) | (td < 0)
    value = (ts == td) & ~null
    loose = ~null & ~value & ~((p.category[s] >= 0) & (p.category[d] >= 0))
    rows = np.flatnonzero(loose)
    if rows.size:
        words = _Words(p.wtitle, p.phead)
        c1, n1 = _contains(p.wtitle, p.phead, words, d[rows], s[rows])
        c2, n2 = _contains(p.wtitle, p.phead, words, s[rows], d[rows])
        hit = c1 | c2
        value[rows] = hit
        null[rows] = ~hit & (n1 | n2)
    return pa.array(value, pa.bool_(), mask=null)


def _same_line(p: _Products, s: np.ndarray, d: np.ndarray) -> pa.Array:
    """The query's ``ps.line IS NOT NULL AND ps.line = pd.line AND (ps.brand IS NOT NULL OR
    ps.category_path IS NOT DISTINCT FROM pd.category_path)``, NULL where SQL gives NULL (dst
    without a line while the other two terms hold)."""
    ls, ld = p.line[s], p.line[d]
    rest = (ls >= 0) & (p.branded[s] | (p.category[s] == p.category[d]))
    null = rest & (ld < 0)
    return pa.array(rest & (ls == ld), pa.bool_(), mask=null)


def _cat_rel(p: _Products, s: np.ndarray, d: np.ndarray) -> np.ndarray:
    """The queries' ``cat_rel``: 3 without both category paths, 0 the same path, 1 the same
    parent, else 2 (int32, as DuckDB types the CASE)."""
    cs, cd, ps, pd = p.category[s], p.category[d], p.parent[s], p.parent[d]
    out = np.where((cs < 0) | (cd < 0), 3, np.where(cs == cd, 0, np.where((ps >= 0) & (ps == pd), 1, 2)))
    return out.astype(np.int32)


def _price_ratio(p: _Products, s: np.ndarray, d: np.ndarray) -> pa.Array:
    """price(dst) / price(src), null unless both are above 0."""
    price_s, price_d = p.price[s], p.price[d]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = price_d / price_s
    return pa.array(ratio, pa.float64(), mask=~((price_s > 0) & (price_d > 0)))


def next_table(tables: dict[str, pa.Table], n: int, *, min_count: int) -> pa.Table | None:
    """The "bought next" candidate query's rows (:data:`tiein.features.NEXT_FEATURE_COLUMNS`,
    ids still codes < ``n``) from coded "prod", "cp_t" (PAIR_STATS) and "tl" (TIMELINE): each
    direction bought one after the other by ``min_count`` customers or more, both ends catalog
    products, sorted by (src, dst); None (the caller runs the query) when a product is twice in the
    timeline or a price is NaN (see :func:`candidate_table`)."""
    cp, tl = tables["cp_t"], tables["tl"]
    tl_code = tl.column("product_id").to_numpy()
    if sorted_unique(tl_code).size != tl_code.size or _has_nan(tables["prod"].column("price")):
        return None
    a, b = cp.column("a").to_numpy(), cp.column("b").to_numpy()
    after_ab, after_ba = cp.column("after_ab"), cp.column("after_ba")
    ab_ok = pc.fill_null(pc.greater_equal(after_ab, min_count), False).to_numpy(zero_copy_only=False)
    ba_ok = pc.fill_null(pc.greater_equal(after_ba, min_count), False).to_numpy(zero_copy_only=False)
    fwd, rev = np.flatnonzero(ab_ok), np.flatnonzero(ba_ok)
    src = np.concatenate([a[fwd], b[rev]])
    dst = np.concatenate([b[fwd], a[rev]])
    prod = _Products(tables["prod"], n)
    keep = (src != dst) & prod.present[src] & prod.present[dst]
    row = np.concatenate([fwd, rev])[keep]
    forward = np.concatenate([np.ones(fwd.size, bool), np.zeros(rev.size, bool)])[keep]
    src, dst = src[keep], dst[keep]
    order = packed_order([src, dst])
    src, dst, row, forward = src[order], dst[order], row[order], forward[order]
    take = pa.array(row)
    sd = pc.if_else(pa.array(forward), after_ab.take(take), after_ba.take(take))
    ds = pc.if_else(pa.array(forward), after_ba.take(take), after_ab.take(take))

    def by_code(column: str) -> np.ndarray:
        out = np.zeros(n, np.int64)
        out[tl_code] = _ints(tl, column)
        return out

    return pa.table(
        {
            "src": src,
            "dst": dst,
            "after_sd": sd.cast(pa.int64()),
            "after_ds": ds.cast(pa.int64()),
            "n_ab": cp.column("n_ab").take(take).cast(pa.int64()),
            "returning_src": by_code("returning")[src],
            "later_dst": by_code("later")[dst],
            "cat_rel": _cat_rel(prod, src, dst),
            "price_ratio": _price_ratio(prod, src, dst),
        }
    )


class _Pairs:
    """A pair table's rows (``a[i]``, ``b[i]``: codes < ``n``) as undirected pairs ``lo < hi``
    in the order of their key ``lo * n + hi`` (``order``: the table's row of each, None when the
    table is in that order already, as mined pairs are); ``repeated``: a pair given twice, either
    way round, or a product paired with itself (the query repeats such rows: the caller runs it)."""

    def __init__(self, a: np.ndarray, b: np.ndarray, n: int) -> None:
        n64 = np.int64(n)
        self.a = a
        self.swapped = a > b  # the row's a is its hi end
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        key = lo * n64 + hi
        self.order: np.ndarray | None = None
        if key.size > 1 and not bool(np.all(key[1:] > key[:-1])):
            self.order = np.argsort(key, kind="stable")
            key, lo, hi = key[self.order], lo[self.order], hi[self.order]
        self.key, self.lo, self.hi, self.n = key, lo, hi, n64
        self.repeated = bool(np.any(key[1:] == key[:-1])) or bool(np.any(lo == hi))

    def sorted(self, values: np.ndarray) -> np.ndarray:
        """A column's values in key order."""
        return values if self.order is None else values[self.order]

    def top(self, forward: np.ndarray, backward: np.ndarray, valid: np.ndarray, k: int) -> np.ndarray:
        """Directed keys of each product's ``k`` best partners among the ``valid`` rows, by the
        value a row gives a → b (``forward``) and b → a (``backward``), high first, ties by
        partner: :func:`tiein.candidate_jit.top_partners`."""
        from tiein.candidate_jit import top_partners

        v_lh, v_hl = forward, backward
        if self.swapped.any():
            v_lh, v_hl = np.where(self.swapped, backward, forward), np.where(self.swapped, forward, backward)
        ok = self.sorted(valid)
        return top_partners(self.lo, self.hi, self.sorted(v_lh), self.sorted(v_hl), ok, int(self.n), k)

    def rows(self, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each directed pair ``src[i] → dst[i]``: the table's row holding it (-1: none), and
        whether that row holds it as (b, a) (its reverse columns apply)."""
        key = np.minimum(src, dst) * self.n + np.maximum(src, dst)
        row = _found(self.key, self.order, key)
        if self.key.size == 0:
            return row, np.zeros(src.size, bool)
        return row, (row >= 0) & (self.a[np.maximum(row, 0)] != src)


def candidate_table(
    tables: dict[str, pa.Table], n: int, *, per_product: int, per_staple: int
) -> pa.Table | None:
    """The candidate query's rows (its columns in its order, ids still codes < ``n``) from the
    coded tables of :func:`tiein.features.candidate_features` ("prod", "cp_t", "cv_t", "lp_t",
    "nb_t"); None where the query is the only exact way (the caller runs it then): a pair table
    that repeats a pair (the query repeats rows), a NaN lift or price (DuckDB orders NaN above
    every number and finds it above 1). The pair tables stay undirected: each product's best
    partners come from both ways of every row at once (:class:`_Pairs`), and only the candidates
    get directed columns."""
    cp, cv, lp, nb = tables["cp_t"], tables["cv_t"], tables["lp_t"], tables["nb_t"]
    n64 = np.int64(n)
    cpp = _Pairs(cp.column("a").to_numpy(), cp.column("b").to_numpy(), n)
    cvp = _Pairs(cv.column("a").to_numpy(), cv.column("b").to_numpy(), n)
    if cpp.repeated or cvp.repeated:
        return None
    if _has_nan(cp.column("lift")) or _has_nan(tables["prod"].column("price")):
        return None

    n_ab, n_a, n_b = _ints(cp, "n_ab"), _ints(cp, "n_a"), _ints(cp, "n_b")
    lift = _floats(cp, "lift")
    lift_valid = pc.is_valid(cp.column("lift")).to_numpy(zero_copy_only=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        confident = 1.0 - 1.0 / lift
        shrunk_ab, shrunk_ba = n_ab / (n_a + 5.0) * confident, n_ab / (n_b + 5.0) * confident
    del confident
    count, co_view = n_ab.astype(np.float64), _ints(cv, "n_ab")
    viewed = co_view.astype(np.float64)
    picked = [
        cpp.top(shrunk_ab, shrunk_ba, lift_valid & (lift > 1.0), per_product),
        cpp.top(count, count, lift_valid & (lift >= 0.8), per_staple),
        cvp.top(viewed, viewed, np.ones(viewed.size, bool), per_product),
    ]
    del shrunk_ab, shrunk_ba, count, viewed, lift_valid  # the peak

    # listed pairs: distinct (src, dst, kind) both ways, counted per directed pair and kind
    ls, ld = lp.column("src").to_numpy(), lp.column("dst").to_numpy()
    kind, kinds = _encoded(lp.column("kind"))
    kind_names = kinds.to_pylist()
    n_kinds = np.int64(len(kind_names) + 1)
    off = ls != ld
    fwd = sorted_unique((ls[off] * n64 + ld[off]) * n_kinds + kind[off] + 1)
    rev = sorted_unique((ld[off] * n64 + ls[off]) * n_kinds + kind[off] + 1)
    both = np.concatenate([fwd, rev])
    lp_pair, lp_kind = both // n_kinds, both % n_kinds - 1
    lp_keys = sorted_unique(lp_pair)
    lp_at = np.searchsorted(lp_keys, lp_pair)
    buy_code = kind_names.index("co_purchase") if "co_purchase" in kind_names else -2
    view_code = kind_names.index("co_view") if "co_view" in kind_names else -2
    listed_buy = np.bincount(lp_at, weights=lp_kind == buy_code, minlength=lp_keys.size).astype(np.int64)
    listed_view = np.bincount(lp_at, weights=lp_kind == view_code, minlength=lp_keys.size).astype(np.int64)
    picked.append(lp_keys)
    ns, nd = nb.column("src").to_numpy(), nb.column("dst").to_numpy()
    picked += [ns * n64 + nd, nd * n64 + ns]

    prod = _Products(tables["prod"], n)
    cand = sorted_unique(np.concatenate(picked))
    s, d = cand // n64, cand % n64
    keep = (s != d) & prod.present[s] & prod.present[d]
    cand, s, d = cand[keep], s[keep], d[keep]

    row, back = cpp.rows(s, d)  # back: the candidate is the row's b → a
    cv_row, _ = cvp.rows(s, d)
    lp_row = _found(lp_keys, None, cand)

    def directed(ab: np.ndarray, ba: np.ndarray) -> np.ndarray:
        """The candidates' value of a column pair: ``ab`` of the row a → b, ``ba`` of b → a."""
        return np.where(back, _take(ba, row), _take(ab, row))

    conf_ab, conf_ba = _floats(cp, "conf_ab"), _floats(cp, "conf_ba")
    after_ab, after_ba = _ints(cp, "after_ab"), _ints(cp, "after_ba")
    return pa.table(
        {
            "src": s,
            "dst": d,
            "n_ab": _take(n_ab, row),
            "n_src": directed(n_a, n_b),
            "n_dst": directed(n_b, n_a),
            "n_baskets": _take(_ints(cp, "n"), row),
            "conf": directed(conf_ab, conf_ba),
            "lift": _take(lift, row),
            "after_sd": directed(after_ab, after_ba),
            "after_ds": directed(after_ba, after_ab),
            "co_view": _take(co_view, cv_row),
            "listed_buy": _take(listed_buy, lp_row),
            "listed_view": _take(listed_view, lp_row),
            "cat_rel": _cat_rel(prod, s, d),
            "price_ratio": _price_ratio(prod, s, d),
            "same_line": _same_line(prod, s, d),
            "same_type": _same_type(prod, s, d),
        }
    )


def top_pair_rows(a: np.ndarray, b: np.ndarray, n_ab: np.ndarray, lift: np.ndarray, k: int) -> np.ndarray:
    """Row indices of the pairs among the ``k`` strongest (n_ab, then lift, high first; ties by
    a, b) of either of their products, in (a, b) order: :func:`tiein.features.top_pairs`.

    Pairs given as ``a < b`` once each (as mined): each product's ``k`` strongest come from
    :func:`tiein.candidate_jit.top_partners` over the rows themselves (among the pairs of one
    product, (a, b) order is partner order, the kernel's tie order), ~40 bytes a pair; others by
    sorting every pair twice (:func:`_top_pair_rows_sorted`, ~100 bytes a pair)."""
    if a.size == 0:
        return np.zeros(0, np.int64)
    n = np.int64(int(max(a.max(), b.max())) + 1)
    pairs = _Pairs(a, b, int(n))
    if pairs.repeated or pairs.swapped.any():  # (a, b) order is partner order only for a < b
        return _top_pair_rows_sorted(a, b, n_ab, lift, k)
    r1, r2 = desc_rank(n_ab), desc_rank(lift)
    strength = -(r1 * np.int64(int(r2.max()) + 1) + r2).astype(np.float64)  # exact below 2**53
    del r1, r2
    kept = pairs.top(strength, strength, np.ones(a.size, bool), k)
    x, y = kept // n, kept % n
    pos = np.searchsorted(pairs.key, sorted_unique(np.minimum(x, y) * n + np.maximum(x, y)))
    return pos if pairs.order is None else pairs.order[pos]


def _top_pair_rows_sorted(
    a: np.ndarray, b: np.ndarray, n_ab: np.ndarray, lift: np.ndarray, k: int
) -> np.ndarray:
    """:func:`top_pair_rows` for any pair table, by sorting (a, b) and (end, strength)."""
    by_ab = packed_order([a, b])  # a pair's place in (a, b) order breaks ties in strength
    ab_rank = np.empty(a.size, np.int64)
    ab_rank[by_ab] = np.arange(a.size)
    # each pair's place in one order: strength (n_ab, then lift), then (a, b); intermediates
    # are dropped as soon as they are used (16M lines: 15M pairs, ~100 bytes a pair at the peak)
    cols = [desc_rank(n_ab), desc_rank(lift), ab_rank]
    packed = sorted_keys(cols)  # unique: ab_rank is
    if packed is None:
        strongest = by_ab[np.lexsort(cols[::-1])]
    else:
        strongest = by_ab[packed[0] & np.int64((1 << packed[1][-1]) - 1)]
    del cols, packed
    place = np.empty(a.size, np.int64)
    place[strongest] = np.arange(a.size)
    del strongest
    ends = np.concatenate([a, b])
    places = np.concatenate([place, place])
    packed = sorted_keys([ends, places])  # (end, place) is unique: no row index needed
    if packed is None:
        order = np.lexsort((places, ends))
        e, pl = ends[order], places[order]
        del order
    else:
        key, widths = packed
        e, pl = key >> widths[1], key & np.int64((1 << widths[1]) - 1)
        del key
    del packed, ends, places
    kept, _ = first_k(e, k)
    del e
    pl = pl[kept]
    del kept
    row_at = place  # reused: the row at each place
    row_at[place.copy()] = np.arange(a.size)
    return cast(np.ndarray, by_ab[sorted_unique(ab_rank[row_at[pl]])])
