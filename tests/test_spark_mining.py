"""tiein.spark_mining against tiein.mining: the same PAIR_STATS rows, timelines and report, from Arrow
tables and from Parquet files, on hand-made baskets, the shop fixture and a slice of Online
Retail; a build through the pipeline with each backend gives the same store answers.

One local Spark session (``local[2]``) is shared by the module so the JVM starts once. Without
pyspark or Java the module is skipped, except under ``CI=true`` where that is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from tiein.errors import ConfigError, InputError
from tiein.mining import MinedPairs, mine_pairs
from tiein.model import ORDERS, PAIR_STATS, TIMELINE

ROOT = Path(__file__).resolve().parents[1]
SHOP = ROOT / "tests" / "fixtures" / "shop"
DATA = Path(os.environ.get("TIEIN_DATA", ROOT.parent / "shared" / "data"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Tiny inputs: compiling generated code and adaptive re-planning cost more than the work (3x here).
# The Online Retail test turns code generation back on, the production path.
SMALL_DATA = {
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
}


def _spark_missing() -> str | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'tiein[spark]')"
    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        return "no Java runtime (apt-get install default-jre-headless)"
    return None


def local_spark(**options: Any) -> Iterator[Any]:
    """A ``local[2]`` session for a test module (skipped without pyspark or Java, a failure under
    CI), stopped after it; ``options`` go to spark_session."""
    missing = _spark_missing()
    if missing:
        if IN_CI:
            pytest.fail(f"CI=true but {missing}")
        pytest.skip(missing)
    from tiein.spark_mining import spark_session

    session = spark_session("local[2]", driver_memory="2g", **options)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    yield from local_spark(shuffle_partitions=2, conf=SMALL_DATA)


def mined_equal(got: MinedPairs, ref: MinedPairs) -> None:
    """Same pairs (schema, rows, order, bit-identical floats), same timeline, same report."""
    assert got.pairs.schema == PAIR_STATS
    assert got.pairs.num_rows == ref.pairs.num_rows
    for name in PAIR_STATS.names:
        g, r = got.pairs.column(name), ref.pairs.column(name)
        if pa.types.is_floating(g.type):  # bit for bit, not approximately
            g, r = (c.to_numpy().view(np.int64) for c in (g, r))
            assert np.array_equal(g, r), name
        else:
            assert g.equals(r), name
    assert got.pairs.equals(ref.pairs)
    assert got.timeline.schema == TIMELINE and got.timeline.equals(ref.timeline)
    strip = lambda rep: {k: v for k, v in rep.items() if k != "seconds"}  # noqa: E731
    assert strip(got.report) == strip(ref.report)
    assert set(got.report["seconds"]) == {"encode", "baskets", "pairs", "after", "assemble"}


def hand_orders(seed: int = 5) -> pa.Table:
    """Deterministic baskets that exercise every rule: 40 products (ASCII upper/lower case and
    Chinese ids, so byte order matters), repeat customers over 200 days, guests, unknown times,
    duplicate lines, two giant baskets and one wholesaler who buys everything."""
    rng = np.random.default_rng(seed)
    items = [f"P{k:02d}" for k in range(30)] + [
        "a1",
        "b2",
        "Z9",
        "帐篷",
        "睡袋",
        "防潮垫",
        "头灯",
        "é",
        "A",
        "a",
    ]
    w = 1.0 / np.arange(1, len(items) + 1)
    w /= w.sum()
    rows: list[tuple[str, str, str | None, datetime | None]] = []
    t0 = datetime(2024, 1, 1, 9)
    for k in range(260):
        cust: str | None = f"c{int(rng.integers(0, 45)):02d}" if rng.random() > 0.08 else None
        ts: datetime | None = t0 + timedelta(days=int(rng.integers(0, 200)), hours=int(rng.integers(0, 3)))
        size = 14 if k in (7, 120) else int(rng.integers(1, 7))  # two giant baskets (> max_basket=12)
        picked = rng.choice(len(items), size=size, replace=False, p=w)
        for j, p in enumerate(picked):
            rows.append((f"o{k:03d}", items[p], cust, None if (k == 33 and j == 0) else ts))
        if k % 17 == 0:  # a repeated line
            rows.append((f"o{k:03d}", items[picked[0]], cust, ts))
    for d, p in enumerate(items[:20]):  # the wholesaler: one line a day
        rows.append((f"w{d:02d}", p, "wholesale", t0 + timedelta(days=d)))
    cols = list(zip(*rows, strict=True))
    return pa.table(
        {
            "order_id": cols[0],
            "product_id": cols[1],
            "quantity": [1.0] * len(rows),
            "customer_id": cols[2],
            "ts": cols[3],
        },
        schema=ORDERS,
    )


def shop_orders() -> pa.Table:
    return pcsv.read_csv(SHOP / "orders.csv", convert_options=pcsv.ConvertOptions(column_types=ORDERS))


HAND_OPTIONS = [
    dict(max_basket=12),
    dict(max_basket=12, min_count=1, after_window_days=None, max_customer_items=8),
    dict(max_basket=12, min_count=1, after_window_days=0),
]


@pytest.mark.parametrize("options", HAND_OPTIONS, ids=["default", "no-window-cap8", "window0"])
def test_hand_baskets_equal_numpy(spark: Any, options: dict[str, Any]) -> None:
    from tiein.spark_mining import mine_pairs_spark

    t = hand_orders()
    ref = mine_pairs(t, **options)
    # the fixture exercises what it should
    assert ref.report["giant_baskets"] == 2 and ref.report["duplicate_lines"] > 0
    if options.get("max_customer_items", 1000) < 20:
        assert ref.report["customers_skipped"] >= 1
    if options.get("after_window_days", 90) != 0:
        assert pc.max(ref.pairs.column("after_ab")).as_py() >= 1
        assert pc.min(ref.pairs.column("n_ab")).as_py() == 0 or options.get("min_count", 2) > 1
    steps: list[str] = []
    got = mine_pairs_spark(t, spark=spark, progress=lambda s, d, n: steps.append(s), **options)
    mined_equal(got, ref)
    assert steps == ["encode", "baskets", "pairs", "after", "assemble"]


def test_shop_fixture_and_views_equal_numpy(spark: Any) -> None:
    from tiein.spark_mining import mine_pairs_spark

    t = shop_orders()
    mined_equal(mine_pairs_spark(t, min_count=1, spark=spark), mine_pairs(t, min_count=1))
    # co-view style: sessions, no customers or times
    views = hand_orders().select(["order_id", "product_id"]).rename_columns(["session_id", "product_id"])
    kw: dict[str, Any] = dict(basket_col="session_id", customer_col=None, ts_col=None, max_basket=12)
    mined_equal(mine_pairs_spark(views, spark=spark, **kw), mine_pairs(views, **kw))


def test_parquet_files_equal_arrow(spark: Any, tmp_path: Path) -> None:
    """Parquet in: a directory of two files with tz-aware times; integer ids and dates."""
    from tiein.spark_mining import mine_pairs_spark

    t = hand_orders()
    t = t.set_column(4, "ts", t.column("ts").cast(pa.timestamp("us", tz="Asia/Shanghai")))
    half = t.num_rows // 2
    parts = tmp_path / "orders"
    parts.mkdir()
    pq.write_table(t.slice(0, half), parts / "part-0.parquet")
    pq.write_table(t.slice(half), parts / "part-1.parquet")
    mined_equal(mine_pairs_spark(parts, max_basket=12, spark=spark), mine_pairs(t, max_basket=12))

    ints = pa.table(
        {
            "order": pa.array([1, 1, 2, 2, 2, 3, 3], pa.int64()),
            "sku": pa.array([10, 9, 10, 9, 100, 9, 100], pa.int32()),
            "cust": ["x", "x", "x", "x", "x", "y", "y"],
            "day": pa.array([0, 0, 3, 3, 3, 1, 1], pa.int32()).cast(pa.date32()),
        }
    )
    pq.write_table(ints, tmp_path / "ints.parquet")
    kw: dict[str, Any] = dict(
        basket_col="order", item_col="sku", customer_col="cust", ts_col="day", min_count=1
    )
    got = mine_pairs_spark([tmp_path / "ints.parquet"], spark=spark, **kw)
    mined_equal(got, mine_pairs(ints, **kw))
    # "10" < "100" < "9" as strings; x bought 9 and 10 on day 0, then 9, 10 and 100 on day 3
    assert got.pairs.select(["a", "b", "n_ab", "after_ab", "after_ba"]).to_pylist() == [
        {"a": "10", "b": "100", "n_ab": 1, "after_ab": 1, "after_ba": 0},
        {"a": "10", "b": "9", "n_ab": 2, "after_ab": 1, "after_ba": 1},
        {"a": "100", "b": "9", "n_ab": 2, "after_ab": 0, "after_ba": 1},
    ]


def test_bad_input_names_file_row_column(spark: Any, tmp_path: Path) -> None:
    from tiein.spark_mining import mine_pairs_spark

    good = hand_orders().slice(0, 20)
    ids = good.column("product_id").to_pylist()
    ids[6] = ""  # data row 7
    bad = good.set_column(1, "product_id", pa.array(ids))
    pq.write_table(good, tmp_path / "a.parquet")
    pq.write_table(bad, tmp_path / "b.parquet")
    with pytest.raises(InputError) as err:
        mine_pairs_spark(tmp_path, spark=spark)
    assert (err.value.file, err.value.row, err.value.column) == (str(tmp_path / "b.parquet"), 7, "product_id")
    assert "empty id" in str(err.value)
    # Arrow in: mine_pairs' own message
    with pytest.raises(InputError) as arrow_err:
        mine_pairs_spark(bad, spark=spark)
    assert (arrow_err.value.row, arrow_err.value.column) == (7, "product_id")
    with pytest.raises(InputError, match="missing column"):
        mine_pairs_spark(tmp_path / "a.parquet", basket_col="basket", spark=spark)
    floats = pa.table(
        {"order_id": ["1"], "product_id": [1.5], "customer_id": ["c"], "ts": [datetime(2024, 1, 1)]}
    )
    pq.write_table(floats, tmp_path / "floats.parquet")
    with pytest.raises(InputError, match="ids must be strings") as type_err:
        mine_pairs_spark(tmp_path / "floats.parquet", spark=spark)
    assert type_err.value.column == "product_id"
    with pytest.raises(InputError, match="no such file"):
        mine_pairs_spark(tmp_path / "nope.parquet", spark=spark)
    with pytest.raises(ConfigError):
        mine_pairs_spark(good, min_count=0, spark=spark)


def online_retail(lines: int) -> pa.Table:
    """The first ``lines`` sale lines of Online Retail I as ORDERS (C-invoices, quantity <= 0 out)."""
    path = DATA / "online_retail" / "online_retail_I.parquet"
    t = pq.read_table(path, columns=["InvoiceNo", "StockCode", "Quantity", "CustomerID", "InvoiceDate"])
    keep = pc.and_(
        pc.invert(pc.starts_with(t["InvoiceNo"].cast(pa.string()), "C")), pc.greater(t["Quantity"], 0)
    )
    t = t.filter(keep).slice(0, lines)
    return pa.table(
        [
            t["InvoiceNo"].cast(pa.string()),
            t["StockCode"].cast(pa.string()),
            t["Quantity"].cast(pa.float64()),
            pc.cast(pc.cast(t["CustomerID"], pa.int64()), pa.string()),
            t["InvoiceDate"].cast(pa.timestamp("us")),
        ],
        schema=ORDERS,
    )


@pytest.mark.slow
def test_online_retail_slice_equal_numpy(spark: Any) -> None:
    """100k real lines (Dec 2010 - Feb 2011): returning customers, guests, giant B2B invoices."""
    from tiein.spark_mining import mine_pairs_spark

    t = online_retail(100_000)
    ref = mine_pairs(t, max_basket=300, after_window_days=30)
    assert ref.report["giant_baskets"] > 0 and ref.report["returning_customers"] > 100
    assert pc.sum(pc.greater(ref.pairs.column("after_ab"), 0)).as_py() > 100
    for key in SMALL_DATA:  # Spark's defaults: generated code, adaptive plans
        spark.conf.unset(key)
    try:
        got = mine_pairs_spark(t, max_basket=300, after_window_days=30, spark=spark)
    finally:
        for key, value in SMALL_DATA.items():
            spark.conf.set(key, value)
    mined_equal(got, ref)


def _related_answers(store_url: str, products: list[str]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    from tiein.graph import open_store
    from tiein.model import RELATION_KINDS

    st = open_store(store_url)
    try:
        out = {(p, kind): st.related(p, kind, k=50) for p in products for kind in RELATION_KINDS}
        out[("*", "CO_PURCHASED")] = st.query(
            "MATCH (x:Product)-[r:CO_PURCHASED]->(y:Product) RETURN x.product_id AS a, y.product_id AS b, "
            "r.n_ab AS n_ab, r.n_a AS n_a, r.n_b AS n_b, r.n AS n, r.support AS support, r.conf_ab AS conf_ab, "
            "r.conf_ba AS conf_ba, r.lift AS lift, r.after_ab AS after_ab, r.after_ba AS after_ba "
            "ORDER BY a, b"
        )
    finally:
        st.close()
    return out


@pytest.mark.slow
def test_build_with_spark_gives_same_store_answers(spark: Any, tmp_path: Path) -> None:
    """The pipeline with mining="spark" (on the active session) loads the same graph into the
    embedded store as mining="numpy": every related() answer and every CO_PURCHASED edge."""
    from tiein.pipeline import BuildOptions, build

    orders = hand_orders()
    csv = tmp_path / "orders.csv"
    pcsv.write_csv(orders, csv)
    answers = []
    for backend in ("numpy", "spark"):
        home = tmp_path / backend
        opts = BuildOptions(
            orders=csv, home=home, embeddings=False, mining=backend, max_basket=12, min_count=2
        )
        jobs = len(spark.sparkContext.statusTracker().getJobIdsForGroup())
        summary = build(opts)
        ran_on_spark = len(spark.sparkContext.statusTracker().getJobIdsForGroup()) > jobs
        assert ran_on_spark == (backend == "spark")
        assert summary.counts["co_purchase_pairs"] > 20
        answers.append(_related_answers(summary.store, sorted(set(orders.column("product_id").to_pylist()))))
    numpy_answers, spark_answers = answers
    assert sum(len(v) for v in numpy_answers.values()) > 50  # something to compare
    assert spark_answers == numpy_answers
    assert spark.sparkContext._jsc is not None  # the shared session is still running

    with pytest.raises(ConfigError, match="mining backend"):
        build(BuildOptions(orders=csv, home=tmp_path / "x", embeddings=False, mining="hadoop"))


def test_missing_java_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import tiein.spark_mining.session as sm
    from tiein.errors import MissingDependency

    if _spark_missing() == "pyspark is not installed (pip install 'tiein[spark]')":
        with pytest.raises(MissingDependency, match="tiein\\[spark\\]"):
            sm.spark_session()
        return
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    monkeypatch.setattr(sm.shutil, "which", lambda name: None)
    with pytest.raises(MissingDependency, match="default-jre-headless"):
        sm.spark_session()


def test_cli_build_has_mining_option() -> None:
    from click.testing import CliRunner

    from tiein.cli import cli

    out = CliRunner().invoke(cli, ["build", "--help"])
    assert "--mining [numpy|spark]" in out.output
    bad = CliRunner().invoke(cli, ["build", "--orders", str(SHOP / "orders.csv"), "--mining", "hadoop"])
    assert bad.exit_code == 2 and "hadoop" in bad.output
