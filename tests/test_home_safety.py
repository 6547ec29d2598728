"""A build, update, rollback or feedback compaction killed at any step leaves the home whole,
the next command works and no folder is left behind; a build that kept nothing never replaces a
good graph; `tiein rollback` returns to the previous build and back.

Kills are real: the command runs in a subprocess with ``TIEIN_FAULT=<point>`` (tiein/faults.py),
which ends it with ``os._exit`` at that step — no ``finally``, no cleanup, like ``kill -9``;
every command that changes the home (build, update, rollback) runs as a subprocess too. The
read-only checks (``tiein stats``, which runs recovery like every command that opens the home, and
``tiein related``) run in-process through ``tiein.cli.main``, the console script's entry point:
the same code and error boundary without an interpreter start-up per check.
The camping shop (tests/fixtures/camping) is built with embeddings once; the other builds take
every vector from the embedding cache, so each run costs about the import time.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_inprocess import run_cli

from tiein.faults import EXIT_CODE, POINTS
from tiein.graph.ladybug_gens import state_of
from tiein.home import GENS, INDEX, INPUTS, read_pointer

CAMPING = Path(__file__).parent / "fixtures" / "camping"
TIEIN = [sys.executable, "-m", "tiein.cli"]


def run(
    *args: str, home: Path, fault: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TIEIN_HOME=str(home), HF_HUB_OFFLINE="1")
    env.pop("TIEIN_STORE", None)
    env.pop("TIEIN_FAULT", None)
    if fault:
        env["TIEIN_FAULT"] = fault
    proc = subprocess.run([*TIEIN, *args], capture_output=True, text=True, env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"tiein {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    assert "Traceback" not in proc.stderr
    return proc


def read(*args: str, home: Path) -> str:
    """A read-only command (``stats``, ``related``) run in-process (tests/cli_inprocess.py): fails
    like :func:`run` on an exit status other than 0 or a traceback in stderr; returns stdout."""
    res = run_cli(*args, home=home)
    if res.code != 0:
        raise AssertionError(f"tiein {' '.join(args)} failed ({res.code}):\n{res.out}\n{res.err}")
    assert "Traceback" not in res.err
    return res.out


def build_args(orders: Path, *extra: str) -> list[str]:
    return ["build", "--catalog", str(CAMPING / "catalog.csv"), "--orders", str(orders), "--quiet", *extra]


def half_orders(tmp: Path) -> Path:
    """The camping orders without the chair: a graph that differs from the full one."""
    with open(CAMPING / "orders.csv", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["product_id"] != "chair"]
    out = tmp / "orders_nochair.csv"
    with open(out, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out


def stats(home: Path) -> dict:
    return json.loads(read("stats", "--json", home=home))


def answers(home: Path) -> list:
    """What the graph answers: the complements of the tent (ids, in order)."""
    out = json.loads(read("related", "tent", "--kind", "complement", "--json", home=home))
    rows = out["related"] if isinstance(out, dict) else out
    return [r["product_id"] for r in rows]


def assert_whole(home: Path) -> str:
    """The home's pointer, store, index and inputs name one generation, and nothing else is left."""
    s = stats(home)  # runs recovery, like every command that opens the home
    pointer = read_pointer(home)
    assert pointer.current is not None
    assert s["meta"]["state_id"] == pointer.current
    gen = home / GENS / pointer.current
    assert json.loads((gen / INPUTS / "build.json").read_text())["state_id"] == pointer.current
    assert (gen / INDEX / "manifest.json").is_file()
    left = sorted(p.name for p in (home / GENS).iterdir())
    assert left == sorted({pointer.current, pointer.previous} - {None}), left
    assert not [
        p.name for p in home.iterdir() if p.name.startswith((".index", ".inputs", ".CURRENT", ".embedding"))
    ]
    # the store keeps the generation that answers and the one before it (for a pointer rollback)
    held = [state_of(p) for p in (home / "graph").iterdir() if p.name.startswith("gen-")]
    assert len(held) <= 2 and set(held) <= {pointer.current, pointer.previous}, held
    return pointer.current


def store_generation(home: Path) -> str:
    return (home / "graph" / "CURRENT").read_text().strip()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with one full camping build (embeddings on: the model loads once here)."""
    home = tmp_path_factory.mktemp("template")
    run(*build_args(CAMPING / "orders.csv"), home=home)
    return home


def fresh(template: Path, tmp: Path) -> Path:
    home = tmp / "home"
    shutil.copytree(template, home)
    return home


@pytest.mark.parametrize("point", [p for p in POINTS if p.startswith(("build.", "store.", "home."))])
def test_build_killed_at_each_step_leaves_a_whole_home(point: str, template: Path, tmp_path: Path) -> None:
    home = fresh(template, tmp_path)
    before_state, before = assert_whole(home), answers(home)
    proc = run(*build_args(half_orders(tmp_path)), home=home, fault=point, check=False)
    assert proc.returncode == EXIT_CODE, proc.stderr
    now = assert_whole(home)
    # before the store switched: the old graph; after: the new one (no chair), never a mix
    assert (now == before_state) == (answers(home) == before)
    if now != before_state:
        assert "chair" not in answers(home)
    # the next build works and switches
    run(*build_args(CAMPING / "orders.csv"), home=home)
    assert assert_whole(home) not in (before_state, now)
    assert answers(home) == before


@pytest.mark.parametrize("point", ["store.building", "store.staged", "store.before_switch"])
def test_first_build_killed_in_the_store_leaves_no_damage(point: str, tmp_path: Path) -> None:
    """A first build killed while the store loads leaves a generation folder and no pointer: that
    is an unfinished load, not a store that lost its pointer; the next build just works."""
    home = tmp_path / "home"
    proc = run(*build_args(CAMPING / "orders.csv"), home=home, fault=point, check=False)
    assert proc.returncode == EXIT_CODE, proc.stderr
    run(*build_args(CAMPING / "orders.csv"), home=home)
    assert_whole(home)
    assert "chair" in answers(home)


@pytest.mark.parametrize("point", ["update.after_stage", "update.after_store"])
def test_update_killed_leaves_a_whole_home(point: str, template: Path, tmp_path: Path) -> None:
    home = fresh(template, tmp_path)
    first = assert_whole(home)
    stock = tmp_path / "stock.csv"
    stock.write_text("product_id,stock\nchair,0\n", encoding="utf-8")
    proc = run("update", "--catalog", str(stock), "--quiet", home=home, fault=point, check=False)
    assert proc.returncode == EXIT_CODE, proc.stderr
    now = assert_whole(home)
    assert (now == first) == (point == "update.after_stage")
    run("update", "--catalog", str(stock), "--quiet", home=home)  # the next update works
    assert assert_whole(home) != now


def test_rollback_returns_and_comes_back(template: Path, tmp_path: Path) -> None:
    home = fresh(template, tmp_path)
    full_state, full = assert_whole(home), answers(home)
    proc = run("rollback", home=home, check=False)  # one build only: nothing to roll back to
    assert proc.returncode == 2 and "nothing to roll back" in proc.stderr
    full_gen = store_generation(home)
    run(*build_args(half_orders(tmp_path)), home=home)
    half_state, half = assert_whole(home), answers(home)
    half_gen = store_generation(home)
    assert half != full and "chair" not in half
    run("rollback", home=home)
    assert assert_whole(home) == full_state and answers(home) == full
    assert store_generation(home) == full_gen  # the kept generation answers again: nothing reloaded
    # killed after the store switched back: recovery finishes the rollback
    proc = run("rollback", home=home, fault="rollback.after_store", check=False)
    assert proc.returncode == EXIT_CODE
    assert assert_whole(home) == half_state and answers(home) == half
    assert store_generation(home) == half_gen
    # a store that no longer holds the previous build (deleted by hand): it is loaded again
    shutil.rmtree(home / "graph" / full_gen)
    run("rollback", home=home)
    assert assert_whole(home) == full_state and answers(home) == full
    assert store_generation(home) not in (full_gen, half_gen)


def test_a_build_that_keeps_nothing_never_replaces_the_graph(template: Path, tmp_path: Path) -> None:
    home = fresh(template, tmp_path)
    state, before = assert_whole(home), answers(home)
    unknown = tmp_path / "unknown.csv"
    unknown.write_text(
        "order_id,product_id\n" + "".join(f"o{i},x{i % 7}\n" for i in range(60)), encoding="utf-8"
    )
    buyer = tmp_path / "buyer.csv"  # the customer column mapped as the product: one "product" per basket
    with open(CAMPING / "orders.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    buyer.write_text(
        "order_id,sku,buyer\n"
        + "".join(f"{r['order_id']},{r['product_id']},{r['customer_id']}\n" for r in rows),
        encoding="utf-8",
    )
    blank = tmp_path / "blank.csv"
    blank.write_text("product_id,title\n,Tent\n,Chair\n", encoding="utf-8")
    cases = {
        "unmatched": (build_args(unknown), "only 0% of the order lines"),
        "buyer as product": (
            ["build", "--orders", str(buyer), "--map", "product_id=buyer", "--quiet"],
            "two different products",
        ),
        "no ids": (["build", "--catalog", str(blank), "--quiet"], "kept no products"),
    }
    for name, (args, message) in cases.items():
        proc = run(*args, home=home, check=False)
        assert proc.returncode == 2, (name, proc.stderr)
        assert message in proc.stderr and "Nothing was changed" in proc.stderr, (name, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert assert_whole(home) == state and answers(home) == before
    # the floors are the user's to lower
    run(*build_args(unknown), "--allow-empty", home=home)
    assert assert_whole(home) != state


def test_a_store_load_that_cannot_fit_in_memory_is_refused_before_it_starts(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LadybugDB's COPY holds a table in memory (the heaviest here: the Evidence nodes): when
    the memory left cannot hold it, the build stops before the store writes anything, in one
    plain line that says what to do, and the graph before it still answers. Run in-process
    (tests/cli_inprocess.py) so that the free memory can be made small."""
    home = fresh(template, tmp_path)
    state, before, gen = assert_whole(home), answers(home), store_generation(home)
    monkeypatch.setattr("tiein.graph.ladybug_load.available_memory", lambda: 1000)
    res = run_cli(*build_args(half_orders(tmp_path)), home=home)
    assert res.code == 1 and len(res.lines) == 1, res.err
    assert "cannot load this graph in the memory left: loading its Evidence table (" in res.err
    assert "Nothing was switched" in res.err and "TIEIN_SKIP_MEMORY_CHECK=1" in res.err
    assert "Traceback" not in res.err
    assert store_generation(home) == gen and assert_whole(home) == state and answers(home) == before
    # the user may try anyway
    res = run_cli(*build_args(half_orders(tmp_path)), home=home, TIEIN_SKIP_MEMORY_CHECK="1")
    assert res.code == 0, res.err
    assert assert_whole(home) != state and answers(home) != before


def test_a_memory_budget_too_small_for_the_store_is_refused_and_changes_nothing(
    template: Path, tmp_path: Path
) -> None:
    """No double: with ``--memory-budget 1M`` this process holds more than the budget already, so
    the store's check before its COPY finds no room and refuses in one line naming the budget;
    the graph before it still answers. A budget that holds the build builds, and its summary
    reports the budget and the peak."""
    home = fresh(template, tmp_path)
    state, before, gen = assert_whole(home), answers(home), store_generation(home)
    res = run_cli(*build_args(half_orders(tmp_path), "--memory-budget", "1M"), home=home)
    assert res.code == 1 and len(res.lines) == 1, res.err
    assert "cannot load this graph in the memory left" in res.err and "0 KB are available" in res.err
    assert "within the memory budget of 1 MB" in res.err and "raise --memory-budget" in res.err
    assert "Traceback" not in res.err
    assert store_generation(home) == gen and assert_whole(home) == state and answers(home) == before
    res = run_cli(*build_args(half_orders(tmp_path), "--memory-budget", "64G", "--json"), home=home)
    assert res.code == 0, res.err
    memory = json.loads(res.out)["memory"]
    assert memory["budget"] == 64 << 30 and 10 << 20 < memory["peak"] < 64 << 30
    assert "forward_only" not in memory  # every table stored both ways, always
    assert assert_whole(home) != state and answers(home) != before


def test_a_memory_budget_that_is_not_a_size_is_refused_before_anything_runs(
    template: Path, tmp_path: Path
) -> None:
    home = fresh(template, tmp_path)
    state = assert_whole(home)
    for bad in ("0", "lots", "6X", "-1G"):
        res = run_cli(*build_args(CAMPING / "orders.csv", "--memory-budget", bad), home=home)
        assert res.code == 2 and f"--memory-budget {bad!r} is not a size" in res.err, res.err
    res = run_cli(*build_args(CAMPING / "orders.csv"), home=home, TIEIN_MEMORY_BUDGET="lots")
    assert res.code == 2 and "TIEIN_MEMORY_BUDGET 'lots' is not a size" in res.err, res.err
    assert "Traceback" not in res.err
    assert assert_whole(home) == state


def test_bad_option_refused_before_anything_runs(template: Path, tmp_path: Path) -> None:
    home = fresh(template, tmp_path)
    state = assert_whole(home)
    for bad in (["--threads", "0"], ["--threads", "-1"], ["--min-count", "0"]):
        proc = run(*build_args(CAMPING / "orders.csv"), *bad, home=home, check=False)
        assert proc.returncode == 2 and bad[0] in proc.stderr, proc.stderr
        assert assert_whole(home) == state


def test_older_layout_is_moved_into_a_generation(template: Path, tmp_path: Path) -> None:
    """A home built before generations (index/ and inputs/ beside graph/) keeps working."""
    home = fresh(template, tmp_path)
    state = assert_whole(home)
    gen = home / GENS / state
    for part in (INDEX, INPUTS):
        os.replace(gen / part, home / part)
    shutil.rmtree(home / GENS)
    (home / "CURRENT").unlink()
    (home / ".index.old-1234").mkdir()  # debris the older layout could leave
    assert assert_whole(home) == state
    stock = tmp_path / "stock.csv"
    stock.write_text("product_id,stock\nchair,0\n", encoding="utf-8")
    run("update", "--catalog", str(stock), "--quiet", home=home)
    assert assert_whole(home) != state


def test_an_embedding_job_left_by_a_killed_build_is_removed(template: Path, tmp_path: Path) -> None:
    """A build and its embedding worker killed at once (an out-of-memory kill of the group) leave
    the job's folder with the titles in the home: the next command's recovery removes it, and
    nothing else."""
    from tiein.embeddings.worker import JOB_PREFIX
    from tiein.home import EMBEDDING_JOB_PREFIX

    assert EMBEDDING_JOB_PREFIX == JOB_PREFIX
    home = fresh(template, tmp_path)
    state = assert_whole(home)
    job = home / f"{JOB_PREFIX}k1ll3d"
    job.mkdir()
    (job / "texts.json").write_text('["帐篷", "camping chair"]', encoding="utf-8")
    kept = home / "embedding-notes.txt"  # not a job folder: left alone
    kept.write_text("mine", encoding="utf-8")
    assert assert_whole(home) == state
    assert not job.exists() and kept.read_text(encoding="utf-8") == "mine"
    assert answers(home)


def test_threads_reach_the_numpy_miner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tiein.mining as mining
    from tiein.pipeline import BuildOptions, build

    seen: list[object] = []
    real = mining.mine_pairs

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(kwargs.get("threads"))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    # where the miner is called: the build's mining step and the ranker's second mining
    monkeypatch.setattr("tiein.pipeline.mine_pairs", spy)
    monkeypatch.setattr("tiein.ranker.orders.mine_pairs", spy)
    build(
        BuildOptions(
            catalog=CAMPING / "catalog.csv",
            orders=CAMPING / "orders.csv",
            home=tmp_path,
            embeddings=False,
            threads=1,
        )
    )
    assert seen and set(seen) == {1}  # every mining call (the build's and any the ranker makes)


def test_the_matched_floor_counts_order_lines_only(tmp_path: Path) -> None:
    """Browsing events of products the catalog lacks (common: views of delisted items) do not
    count against the order lines' matched share; order lines repeated in a basket count as read."""
    from tiein.pipeline import BuildOptions, build

    views = tmp_path / "views.csv"
    views.write_text(
        "session_id,product_id\n" + "".join(f"s{i},gone{i}\n" for i in range(2000)), encoding="utf-8"
    )
    summary = build(
        BuildOptions(catalog=CAMPING / "catalog.csv", orders=CAMPING / "orders.csv", views=views, home=tmp_path / "h",
                     embeddings=False, threads=1)
    )  # fmt: skip
    assert summary.counts["products"] > 0
