"""The feedback loop on hand-made fixtures (tests/fixtures/feedback), numbers worked out by hand.

events.csv, experiment exp1 (u7 buys without an impression: not attributed):
  A: u1 shown a→x, a→y, clicks x, buys x (o1, 30); u2 shown a→x, a→y; u3 shown b→z, clicks, buys z (o2, 50)
  B: u4 shown a→x, a→y, clicks both, buys both in o3 (80 on both lines); u5 shown a→y, buys y (o4, 60);
     u6 shown b→z
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from tiein.cli import cli
from tiein.errors import ConfigError, InputError
from tiein.feedback import (
    EVENTS,
    ab_report,
    assign,
    events_table,
    feedback_stats,
    ingest,
    ingest_records,
    lift_ci,
    read_events,
    read_log,
    rerank,
    wilson,
)

FIX = Path(__file__).parent / "fixtures" / "feedback"
Z = 1.959963984540054


def _ev(
    item: str, event: str, anchor: str = "a", kind: str = "complement", user: str = "u"
) -> dict[str, str]:
    return {
        "ts": "2024-01-01",
        "user_id": user,
        "anchor_id": anchor,
        "item_id": item,
        "kind": kind,
        "event": event,
    }


def test_read_events_csv_and_jsonl() -> None:
    t = read_events(FIX / "events.csv")
    assert t.schema == EVENTS
    assert t.num_rows == 20
    first = t.to_pylist()[3]
    assert (first["event_id"], first["event"], first["value"], first["order_id"]) == (
        "e04",
        "purchase",
        30.0,
        "o1",
    )
    j = read_events(FIX / "other_experiment.jsonl").to_pylist()
    # "+08:00" is converted to naive UTC; numbers as ids become text; "Add-To-Cart" is normalised
    assert j[1]["ts"].isoformat() == "2024-03-03T00:00:00"
    assert (j[1]["user_id"], j[1]["kind"], j[1]["event"]) == ("17850", "complement", "add_to_cart")


def test_read_events_errors_name_file_row_column() -> None:
    with pytest.raises(InputError) as exc:
        read_events(FIX / "bad.csv")
    e = exc.value
    assert e.file.endswith("bad.csv") and e.row == 3 and e.column == "time"  # header is row 1
    msg = str(e)
    for part in (
        "'yesterday'",
        "row 4 column 'event'",
        "'view'",
        "row 4 column 'user_id'",
        "'complements'",
        "negative",
    ):
        assert part in msg


def test_read_events_missing_column(tmp_path: Path) -> None:
    f = tmp_path / "e.csv"
    f.write_text("time,user_id,anchor_id,item_id,event\n2024-01-01,u,a,b,click\n")
    with pytest.raises(InputError, match="missing column.*kind") as exc:
        read_events(f)
    assert exc.value.column == "kind"


def test_ingest_is_idempotent(tmp_path: Path) -> None:
    t = read_events(FIX / "events.csv")
    r1 = ingest(tmp_path, t)
    assert (r1.received, r1.added, r1.duplicates) == (20, 20, 0)
    r2 = ingest(tmp_path, t)
    assert (r2.added, r2.duplicates, r2.part) == (0, 20, None)
    # events without ids are deduplicated by content, also inside one batch
    recs = [_ev("x", "impression"), _ev("x", "impression"), _ev("y", "impression")]
    r3 = ingest_records(tmp_path, recs)
    assert (r3.received, r3.added, r3.duplicates) == (3, 2, 1)
    assert ingest_records(tmp_path, recs).added == 0
    log = read_log(tmp_path)
    assert log.num_rows == 22 and log.schema == EVENTS
    assert len(list((tmp_path / "feedback" / "events").glob("part-*.parquet"))) == 2


def test_many_small_ingests_are_merged_into_few_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tiein.feedback.log as fb

    monkeypatch.setattr(fb, "COMPACT_PARTS", 3)
    home = tmp_path / "it's home"  # a quote in the path
    for i in range(7):
        res = ingest_records(
            home, [_ev(f"x{i}", "impression", user=f"u{i}"), _ev(f"x{i}", "click", user=f"u{i}")]
        )
        assert res.added == 2 and res.part is not None and Path(res.part).exists()
    parts = sorted((home / "feedback" / "events").glob("part-*.parquet"))
    assert 1 <= len(parts) <= 3 and any(p.name.endswith("-merged.parquet") for p in parts)
    assert not list((home / "feedback" / "events").glob(".*.tmp"))
    log = read_log(home)
    assert log.num_rows == 14 and log.schema == EVENTS
    assert sorted(set(log.column("item_id").to_pylist())) == [f"x{i}" for i in range(7)]
    # the keys survive the merge: re-ingesting adds nothing
    assert ingest_records(home, [_ev("x3", "click", user="u3")]).added == 0
    assert feedback_stats(log).kinds.to_pylist()[0]["impressions"] == 7


def test_read_log_relists_parts_merged_while_it_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tiein.feedback.log as fb

    ingest_records(tmp_path, [_ev("x", "impression")])
    real = fb._parts
    stale = [*real(tmp_path), str(tmp_path / "feedback" / "events" / "part-gone.parquet")]
    calls = iter([stale])
    monkeypatch.setattr(fb, "_parts", lambda home: next(calls, None) or real(home))
    assert read_log(tmp_path).num_rows == 1  # the first listing named a file merged away: listed again
    # a file that is missing for good is an error, not an endless retry
    monkeypatch.setattr(fb, "_parts", lambda home: [str(tmp_path / "missing.parquet")])
    with pytest.raises(Exception, match="missing.parquet"):
        read_log(tmp_path)


def test_ingest_records_errors() -> None:
    with pytest.raises(InputError, match="no events"):
        ingest_records("/nonexistent", [])
    with pytest.raises(InputError) as exc:
        ingest_records(
            "/nonexistent",
            [_ev("x", "impression"), {**_ev("x", "impression"), "event": "like"}],
            "POST /v1/events",
        )
    assert (exc.value.file, exc.value.row, exc.value.column) == ("POST /v1/events", 2, "event")
    with pytest.raises(InputError) as exc:
        ingest_records("/nonexistent", [{**_ev("x", "click"), "value": [1]}])
    assert (exc.value.row, exc.value.column) == (1, "value")


def test_stats_counts_and_smoothing() -> None:
    s = feedback_stats(read_events(FIX / "events.csv"), prior_strength=10)
    kinds = {r["kind"]: r for r in s.kinds.to_pylist()}
    # complement: impressions a→x u1 u2 u4, a→y u1 u2 u4 u5 = 7; purchases x u1 u4 u7, y u4 u5 = 5
    c = kinds["complement"]
    assert (c["impressions"], c["clicks"], c["add_to_carts"], c["purchases"]) == (7, 3, 1, 5)
    # prior: per-pair capped successes (x: min(3, 3), y: min(2, 4)) → (5 + 1) / (7 + 2)
    assert c["conversion_prior"] == pytest.approx(6 / 9)
    pairs = {(r["anchor_id"], r["item_id"]): r for r in s.pairs.to_pylist()}
    x = pairs[("a", "x")]
    assert (x["impressions"], x["clicks"], x["purchases"], x["conversion"]) == (3, 2, 3, 1.0)
    assert x["conversion_smoothed"] == pytest.approx((3 + 10 * 6 / 9) / (3 + 10))
    y = pairs[("a", "y")]
    assert y["ctr_smoothed"] == pytest.approx(
        (1 + 10 * (3 + 1) / 9) / (4 + 10)
    )  # ctr prior (min(2,3)+min(1,4)+1)/9
    z = pairs[("b", "z")]
    assert (z["kind"], z["impressions"], z["purchases"]) == ("substitute", 2, 1)


def test_ab_report_numbers_by_hand(tmp_path: Path) -> None:
    ingest(tmp_path, read_events(FIX / "events.csv"))
    ingest(tmp_path, read_events(FIX / "other_experiment.jsonl"))
    log = read_log(tmp_path)
    with pytest.raises(ConfigError, match="exp0, exp1"):
        ab_report(log)
    rep = ab_report(log, experiment="exp1")
    a, b = rep["variants"]
    assert rep["control"] == "A"
    assert (a["users"], a["impressions"], a["clicks"], a["purchases"], a["orders"]) == (3, 5, 2, 2, 2)
    assert (b["users"], b["impressions"], b["clicks"], b["purchases"], b["orders"]) == (3, 4, 2, 3, 2)
    # add-on rate A: per-user purchases [1, 0, 1]: mean 2/3, sd √(1/3), se = sd/√3 = 1/3
    assert a["add_on_rate"]["value"] == pytest.approx(2 / 3)
    assert a["add_on_rate"]["se"] == pytest.approx(1 / 3)
    assert a["add_on_rate"]["high"] == pytest.approx(2 / 3 + Z / 3)
    # B: [2, 1, 0] → 1, se 1/√3; AOV: o3 counted once (80), o4 60 → 70, se 10; A: 30, 50 → 40, se 10
    assert b["add_on_rate"]["value"] == 1.0 and b["add_on_rate"]["se"] == pytest.approx(1 / math.sqrt(3))
    assert (a["aov"]["value"], b["aov"]["value"]) == (40.0, 70.0)
    assert a["aov"]["se"] == pytest.approx(10.0) and b["aov"]["low"] == pytest.approx(70 - Z * 10)
    # conversion A = 2/5; per user y=[1,0,1], x=[2,2,1]: Σ(y - 0.4x)² = 1.04 → se² = 1.04/2 / (3·(5/3)²)
    assert a["conversion"]["value"] == 0.4 and a["conversion"]["se"] == pytest.approx(
        math.sqrt(0.52 / (25 / 3))
    )
    lifts = {x["metric"]: x for x in rep["lift"]}
    assert lifts["add_on_rate"]["value"] == pytest.approx(0.5)
    se = math.sqrt((1 / math.sqrt(3)) ** 2 + ((1 / 3) / (2 / 3)) ** 2)
    assert lifts["add_on_rate"]["low"] == pytest.approx(1.5 * math.exp(-Z * se) - 1)
    assert lifts["aov"]["value"] == pytest.approx(0.75)


def test_report_cli_writes_png_and_html(tmp_path: Path) -> None:
    home, out = tmp_path / "home", tmp_path / "out"
    r = CliRunner().invoke(cli, ["feedback", "ingest", str(FIX / "events.csv"), "--home", str(home)])
    assert r.exit_code == 0 and "20 of 20 events added" in r.output
    r = CliRunner().invoke(cli, ["feedback", "ingest", str(FIX / "events.csv"), "--home", str(home)])
    assert "0 of 20 events added" in r.output
    r = CliRunner().invoke(cli, ["feedback", "stats", "--kind", "substitute", "--json", "--home", str(home)])
    assert r.exit_code == 0 and '"impressions": 2' in r.output and "complement" not in r.output
    import json

    as_json = json.loads(r.output)
    assert as_json["items"] == [
        {"item_id": "z", "kind": "substitute", "anchors": 1, "impressions": 2, "clicks": 1, "purchases": 1}
    ]
    r = CliRunner().invoke(cli, ["feedback", "stats", "--home", str(home)])
    assert "top recommended items by purchases" in r.output and "anchors" in r.output
    r = CliRunner().invoke(cli, ["report", "--home", str(home), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "lift B vs A add_on_rate  +50.0%" in r.output
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "70" in html


def test_assign_is_stable_and_follows_weights() -> None:
    users = [f"user-{i}" for i in range(4000)]
    got = [assign(u, "exp") for u in users]
    assert got == [assign(u, "exp") for u in users]
    assert 0.45 < got.count("A") / len(got) < 0.55
    weighted = [assign(u, "exp", ("A", "B", "C"), weights=[0.8, 0.1, 0.1]) for u in users]
    assert 0.77 < weighted.count("A") / len(users) < 0.83
    # another experiment splits independently of this one
    other = [assign(u, "exp-2") for u in users]
    agree = sum(x == y for x, y in zip(got, other, strict=True)) / len(users)
    assert 0.45 < agree < 0.55
    assert assign("u", "e", ("A", "B"), weights=[0, 1]) == "B"
    with pytest.raises(ConfigError):
        assign("u", "e", ("A", "B"), weights=[1])


def test_wilson_and_lift() -> None:
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(Z**2 / (10 + Z**2))
    assert lift_ci({"value": 0.2, "se": 0.0}, {"value": 0.1, "se": 0.0}) == {
        "value": pytest.approx(1.0),
        "low": pytest.approx(1.0),
        "high": pytest.approx(1.0),
    }
    assert lift_ci({"value": 0.2, "se": 0.01}, {"value": 0.0, "se": 0.0})["value"] is None


def _rows(*items: tuple[str, float]) -> list[dict[str, object]]:
    return [{"product_id": p, "kind": "complement", "score": s} for p, s in items]


def test_rerank_moves_sellers_up_and_keeps_unseen_order() -> None:
    rows = _rows(("p1", 0.9), ("p2", 0.8), ("p3", 0.7), ("p4", 0.6))
    # p1 shown 40 times, never bought; p3 shown 40 times, bought 20 times; p2, p4 never shown
    recs = [_ev("p1", "impression", user=f"u{i}") for i in range(40)]
    recs += [_ev("p3", "impression", user=f"u{i}") for i in range(40)]
    recs += [_ev("p3", "purchase", user=f"u{i}") for i in range(20)]
    stats = feedback_stats(events_table(recs), prior_strength=10)
    greedy = rerank(rows, stats, anchor_id="a", explore=0.0)
    order = [r["product_id"] for r in greedy]
    assert order[0] == "p3" and order[-1] == "p1"
    assert order.index("p2") < order.index("p4")  # unseen pairs keep the classifier's order
    assert greedy[0]["feedback"]["impressions"] == 40 and greedy[0]["feedback"]["successes"] == 20
    assert greedy[0]["score"] == 0.7  # the classifier's score is kept
    # deterministic per seed; exploration draws differ between seeds
    a = rerank(rows, stats, anchor_id="a", explore=1.0, seed=1)
    assert a == rerank(rows, stats, anchor_id="a", explore=1.0, seed=1)
    draws = {
        tuple(r["feedback"]["draw"] for r in rerank(rows, stats, anchor_id="a", explore=1.0, seed=s))
        for s in range(5)
    }
    assert len(draws) == 5
    # no feedback at all: the classifier's order
    empty = feedback_stats(EVENTS.empty_table())
    assert [r["product_id"] for r in rerank(rows, empty, anchor_id="a", explore=0.0)] == [
        "p1",
        "p2",
        "p3",
        "p4",
    ]
    with pytest.raises(ConfigError):
        rerank(rows, stats, anchor_id="a", explore=2.0)


def test_rerank_item_level_lifts_items_that_sell_for_other_anchors() -> None:
    rows = _rows(("p1", 0.9), ("p2", 0.8), ("p3", 0.7))
    # for anchor "a" nothing was shown yet; for anchors b and c, p3 sold 30 of 60 times and p1 1 of 60
    recs: list[dict[str, str]] = []
    for other in ("b", "c"):
        for i in range(30):
            recs += [
                _ev("p1", "impression", anchor=other, user=f"{other}{i}"),
                _ev("p3", "impression", anchor=other, user=f"{other}{i}"),
            ]
        recs += [_ev("p3", "purchase", anchor=other, user=f"{other}{i}") for i in range(15)]
    recs += [_ev("p1", "purchase", anchor="b", user="b0")]
    # and p3's own pair with "a": shown 5 times, bought once
    recs += [_ev("p3", "impression", anchor="a", user=f"a{i}") for i in range(5)]
    recs += [_ev("p3", "purchase", anchor="a", user="a0")]
    stats = feedback_stats(events_table(recs), prior_strength=10, item_strength=20)
    items = {(r["item_id"], r["kind"]): r for r in stats.items.to_pylist()}
    assert (items[("p3", "complement")]["anchors"], items[("p3", "complement")]["impressions"]) == (3, 65)
    assert items[("p3", "complement")]["purchases"] == 31
    out = rerank(rows, stats, anchor_id="a", explore=0.0)
    assert [r["product_id"] for r in out] == ["p3", "p2", "p1"]
    f3 = next(r["feedback"] for r in out if r["product_id"] == "p3")
    # the pair's own counts are left out of its item level: 65 - 5 impressions, 31 - 1 purchases
    assert (f3["impressions"], f3["successes"], f3["item_impressions"], f3["item_successes"]) == (
        5,
        1,
        60,
        30,
    )
    p = stats.prior_rate("complement")  # (31 + 1 + 1) / (125 + 2): capped successes over impressions
    assert p == pytest.approx(33 / 127)
    assert f3["item_factor"] == pytest.approx((30 + 20 * p) / (60 + 20) / p, abs=1e-6)
    # p2 was never shown anywhere: factor 1, its score-based prior; p1 sells badly elsewhere: last
    f2 = next(r["feedback"] for r in out if r["product_id"] == "p2")
    assert f2["item_factor"] == 1.0 and f2["item_impressions"] == 0
    # item_strength 0: no item level, p1 and p2 keep the classifier's order above p3
    flat = feedback_stats(events_table(recs), prior_strength=10, item_strength=0)
    assert [r["product_id"] for r in rerank(rows, flat, anchor_id="a", explore=0.0)][:2] == ["p1", "p2"]
    with pytest.raises(ConfigError, match="item_strength"):
        feedback_stats(events_table(recs), item_strength=-1)


def test_related_payload_feedback_hook(tmp_path: Path) -> None:
    import pyarrow as pa

    from tiein.graph import open_store
    from tiein.model import PRODUCTS, RELATIONS, GraphData
    from tiein.service import related_payload

    ids = ["a", "p1", "p2", "p3"]
    products = pa.Table.from_pylist(
        [
            {
                "product_id": i,
                "title": f"item {i}",
                "category": None,
                "category_path": None,
                "brand": None,
                "price": 1.0,
                "stock": None,
                "attributes": None,
            }
            for i in ids
        ],
        schema=PRODUCTS,
    )
    rel = pa.Table.from_pylist(
        [
            {
                "src": "a",
                "dst": d,
                "kind": "complement",
                "score": s,
                "n_ab": 3,
                "lift": 2.0,
                "confidence": 0.1,
                "co_view": 0,
                "similarity": None,
                "category_relation": "unknown",
                "price_ratio": 1.0,
                "evidence": "{}",
            }
            for d, s in (("p1", 0.9), ("p2", 0.8), ("p3", 0.7))
        ],
        schema=RELATIONS,
    )
    store = open_store(tmp_path / "graph")
    try:
        store.replace(GraphData(products=products, relations=rel))
        plain = related_payload(store, "a", "complement", 1)
        assert [r["product_id"] for r in plain["related"]] == ["p1"] and "feedback" not in plain["related"][0]
        recs = [_ev("p1", "impression", user=f"u{i}") for i in range(30)]
        recs += [_ev("p3", "impression", user=f"u{i}") for i in range(30)]
        recs += [_ev("p3", "purchase", user=f"u{i}") for i in range(15)]
        stats = feedback_stats(events_table(recs), prior_strength=10)
        fb = related_payload(store, "a", "complement", 1, feedback=stats, seed=7)
        assert [r["product_id"] for r in fb["related"]] == ["p3"]  # from beyond the top k
        assert fb["related"][0]["feedback"]["successes"] == 15 and fb["related"][0]["explanation_en"]
    finally:
        store.close()
    # the CLI: `tiein related --feedback` re-ranks by the home's log
    ingest_records(tmp_path, recs)
    r = CliRunner().invoke(cli, ["related", "a", "-k", "1", "--home", str(tmp_path)])
    assert r.exit_code == 0 and "p1" in r.output and "p3" not in r.output
    r = CliRunner().invoke(cli, ["related", "a", "-k", "1", "--feedback", "--home", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "p3" in r.output and "feedback: shown 30, conversion 15" in r.output
