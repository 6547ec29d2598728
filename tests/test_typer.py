"""Substitute vs complement learnt from the shop's own lists (tiein.typer, tiein.loaders.pairs,
``tiein build --pairs``), on a hand-checkable fixture: ten phones viewed instead of each other,
each phone bought with two cases; one phone-phone and one phone-case pair left out of the lists."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from tiein.cli import cli
from tiein.errors import InputError
from tiein.loaders.pairs import read_pairs
from tiein.model import LISTED_PAIRS
from tiein.relations import RelationConfig, score_features
from tiein.typer import TyperConfig, type_probability

PHONES = [f"P{i}" for i in range(10)]
CASES = [f"C{i}" for i in range(10)]
UNLISTED_SUB = ("P0", "P1")
UNLISTED_COMP = ("P0", "C0")


def listed_pairs() -> list[tuple[str, str, str]]:
    rows = []
    for i, a in enumerate(PHONES):
        for b in PHONES[i + 1 :]:
            if (a, b) != UNLISTED_SUB:
                rows.append((a, b, "co_view"))
        for c in (CASES[i], CASES[(i + 1) % 10]):
            if (a, c) != UNLISTED_COMP:
                rows.append((a, c, "co_purchase"))
    return rows


def features(pairs: list[tuple[str, str]]) -> dict[str, np.ndarray]:
    src = [a for a, b in pairs] + [b for a, b in pairs]
    dst = [b for a, b in pairs] + [a for a, b in pairs]
    n = len(src)
    return {
        "src": np.array(src, dtype=object),
        "dst": np.array(dst, dtype=object),
        "n_ab": np.zeros(n, dtype=np.int64),
        "n_src": np.zeros(n, dtype=np.int64),
        "conf": np.zeros(n),
        "lift": np.zeros(n),
        "after_sd": np.zeros(n, dtype=np.int64),
        "after_ds": np.zeros(n, dtype=np.int64),
        "co_view": np.zeros(n, dtype=np.int64),
        "listed_buy": np.zeros(n, dtype=np.int64),
        "listed_view": np.zeros(n, dtype=np.int64),
        "similarity": np.full(n, 0.5),  # titles say nothing here: the lists must
        "cat_rel": np.full(n, 3, dtype=np.int64),
        "price_ratio": np.full(n, np.nan),
        "same_line": np.zeros(n, dtype=bool),
    }


def test_unlisted_pairs_are_typed_by_the_shops_own_pattern() -> None:
    rows = listed_pairs()
    listed = pa.table(
        {k: [r[i] for r in rows] for i, k in enumerate(("src", "dst", "kind"))}, schema=LISTED_PAIRS
    )
    pairs = [(a, b) for a, b, _ in rows] + [UNLISTED_SUB, UNLISTED_COMP]
    f = features(pairs)
    p, report = type_probability(f, listed, TyperConfig(min_each=10))
    assert p is not None and report["fitted"] and report["cv_auc"] >= 0.9, report
    at = {(a, b): p[i] for i, (a, b) in enumerate(zip(f["src"], f["dst"], strict=True))}
    assert at[UNLISTED_SUB] < 0.5 < at[UNLISTED_COMP]
    assert at[UNLISTED_SUB[::-1]] == pytest.approx(at[UNLISTED_SUB])  # a pair's type has no direction
    assert at[("P2", "P3")] == 0.0 and at[("P2", "C2")] == 1.0  # listed pairs keep their label
    # the engine's typing follows it: one kind per direction
    f["p_complement"] = p
    s = score_features(f, RelationConfig())
    i_sub = next(i for i, k in enumerate(zip(f["src"], f["dst"], strict=True)) if k == UNLISTED_SUB)
    assert s["substitute"][i_sub] > 0 and s["complement"][i_sub] == 0
    both = (s["substitute"] > 0) & (s["complement"] > 0)
    assert not both.any()


def test_too_few_labels_keep_the_hand_set_typing() -> None:
    rows = listed_pairs()[:12]
    listed = pa.table(
        {k: [r[i] for r in rows] for i, k in enumerate(("src", "dst", "kind"))}, schema=LISTED_PAIRS
    )
    p, report = type_probability(features([(a, b) for a, b, _ in rows]), listed)
    assert p is None and not report["fitted"] and "30 of each" in report["reason"]


def test_pairs_file_kinds_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "pairs.csv"
    good.write_bytes("商品,关联商品,关系\nP0,C0,搭配\nP0,P1,替代\nP2,C2,also_bought\n".encode("gbk"))
    t = read_pairs(good)
    assert t.to_pylist() == [
        {"src": "P0", "dst": "C0", "kind": "co_purchase"},
        {"src": "P0", "dst": "P1", "kind": "co_view"},
        {"src": "P2", "dst": "C2", "kind": "co_purchase"},
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("src,dst,kind\nP0,C0,complement\nP0,P1,cousin\n")
    with pytest.raises(InputError) as err:
        read_pairs(bad)
    assert err.value.row == 3 and err.value.column == "kind" and "cousin" in str(err.value)
    missing = tmp_path / "missing.csv"
    missing.write_text("src,kind\nP0,complement\n")
    with pytest.raises(InputError, match="no dst column"):
        read_pairs(missing)


def test_build_learns_from_a_pairs_file(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        "product_id,title\n"
        + "".join(f"{p},Phone {p}\n" for p in PHONES)
        + "".join(f"{c},Case {c}\n" for c in CASES)
    )
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        "src,dst,kind\n"
        + "".join(
            f"{a},{b},{'substitute' if k == 'co_view' else 'complement'}\n" for a, b, k in listed_pairs()
        )
    )
    home = tmp_path / "home"
    runner = CliRunner()
    args = ["build", "--home", str(home), "--catalog", str(catalog), "--pairs", str(pairs)]
    res = runner.invoke(cli, [*args, "--no-embeddings", "--quiet", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["type_classifier"]["fitted"] and summary["type_classifier"]["cv_auc"] >= 0.9
    assert summary["counts"]["listed_pairs"] == len(listed_pairs())
    kinds = set()
    for kind in ("complement", "substitute"):
        res = runner.invoke(cli, ["related", "P2", "--kind", kind, "--home", str(home), "--json", "-k", "20"])
        assert res.exit_code == 0, res.output
        kinds |= {(r["product_id"], kind) for r in json.loads(res.output)["related"]}
    assert ("C2", "complement") in kinds and ("P3", "substitute") in kinds
    assert ("C2", "substitute") not in kinds and ("P3", "complement") not in kinds
