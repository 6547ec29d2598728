"""POST /v1/events and ``related?feedback=true`` over real HTTP (a `tiein serve` subprocess on the
camping fixture's graph; the events land in the home's real Parquet event log)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_api import assert_envelope, camping_home, serve

from tiein.feedback import read_log


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the camping home with an empty event log (the shared one stays untouched)."""
    src = camping_home(tmp_path_factory)
    dst = tmp_path_factory.mktemp("events") / "home"
    shutil.copytree(src / "graph", dst / "graph")
    return dst


@pytest.fixture(scope="module")
def api(home: Path) -> Iterator[httpx.Client]:
    # refresh 0: a request after an ingest sees it (the default refreshes in the background)
    env = {"TIEIN_API_FEEDBACK_REFRESH": "0"}
    with serve("--home", str(home), env=env) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def event(
    i: int, anchor: str, item: str, kind: str = "complement", what: str = "impression", **kw: Any
) -> dict:
    return {
        "event_id": f"e{i}",
        "ts": f"2024-05-01T10:{i // 60 % 60:02d}:{i % 60:02d}",
        "user_id": f"u{i % 7}",
        "anchor_id": anchor,
        "item_id": item,
        "kind": kind,
        "event": what,
        **kw,
    }


def test_events_are_logged_once(api: httpx.Client, home: Path) -> None:
    batch = [
        event(1, "tent", "chair"),
        event(2, "tent", "chair", what="click"),
        event(3, "tent", "chair", what="purchase", value=428.0, order_id="o1", surface="live"),
    ]
    r = api.post("/v1/events", json={"events": batch})
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 3, "added": 3, "duplicates": 0}
    log = read_log(home)
    assert sorted(log.column("event_id").to_pylist()) == ["e1", "e2", "e3"]
    bought = next(e for e in log.to_pylist() if e["event_id"] == "e3")
    assert bought["value"] == 428.0 and bought["surface"] == "live" and bought["event"] == "purchase"
    # re-posting (a retry after a timeout) adds nothing; a new event in the same batch is added
    again = api.post("/v1/events", json={"events": [*batch, event(4, "tent", "lamp")]})
    assert again.json() == {"received": 4, "added": 1, "duplicates": 3}
    assert read_log(home).num_rows == 4


def test_a_bad_event_rejects_the_batch_naming_index_and_field(api: httpx.Client, home: Path) -> None:
    before = read_log(home).num_rows
    batch = [event(10, "tent", "chair"), event(11, "tent", "chair"), event(12, "tent", "chair", what="liked")]
    err = assert_envelope(api.post("/v1/events", json={"events": batch}), 422, "invalid_input")
    assert err["message"].startswith("events[2].event: unknown event 'liked'")
    assert err["details"]["row"] == 3 and err["details"]["column"] == "event"
    bad_time = [event(13, "tent", "chair", ts="yesterday-ish")]
    err = assert_envelope(api.post("/v1/events", json={"events": bad_time}), 422, "invalid_input")
    assert "events[0].ts" in err["message"] and "yesterday-ish" in err["message"]
    assert read_log(home).num_rows == before  # all or nothing


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        (
            {
                "events": [
                    {
                        "ts": "2024-05-01",
                        "user_id": "u",
                        "anchor_id": "tent",
                        "kind": "complement",
                        "event": "click",
                    }
                ]
            },
            "events[0].item_id",
        ),
        ({"events": []}, "events"),
        ({"events": [event(1, "tent", "chair", value=-3)]}, "events[0].value"),
        ({"events": [event(1, "tent", "chair", colour="red")]}, "events[0].colour"),
        ([event(1, "tent", "chair")], "body"),
    ],
)
def test_malformed_bodies_are_422_naming_the_field(api: httpx.Client, body: Any, parameter: str) -> None:
    err = assert_envelope(api.post("/v1/events", json=body), 422, "invalid_parameter")
    assert parameter in [e["parameter"] for e in err["details"]["errors"]], err


def test_feedback_reranks_related_and_sees_new_events(api: httpx.Client, home: Path) -> None:
    plain = api.get("/v1/products/tent/related", params={"kind": "complement", "k": 3}).json()["related"]
    pool = api.get("/v1/products/tent/related", params={"kind": "complement", "k": 9}).json()["related"]
    ids = [r["product_id"] for r in pool]
    assert len(ids) >= 4, ids
    top, low = ids[0], ids[-1]
    assert low not in [r["product_id"] for r in plain]
    # the classifier's favourite is shown 300 times and never bought; the last one sells every other time
    evs, i = [], 100
    for item, buys in ((top, 0), (low, 150)):
        for j in range(300):
            evs.append(event(i, "tent", item))
            i += 1
            if j < buys:
                evs.append(event(i, "tent", item, what="purchase"))
                i += 1
    assert api.post("/v1/events", json={"events": evs}).json()["added"] == len(evs)
    r = api.get("/v1/products/tent/related", params={"kind": "complement", "k": 3, "feedback": "true"})
    assert r.status_code == 200, r.text
    ranked = r.json()["related"]
    assert ranked[0]["product_id"] == low
    assert top not in [row["product_id"] for row in ranked]
    assert all("feedback_score" in row and "explanation_en" in row for row in ranked)
    # the same log gives the same answer; without the flag the classifier's order is untouched
    again = api.get("/v1/products/tent/related", params={"kind": "complement", "k": 3, "feedback": "true"})
    assert again.json() == r.json()
    assert (
        api.get("/v1/products/tent/related", params={"kind": "complement", "k": 3}).json()["related"] == plain
    )
    # events ingested from a file by the CLI reach the running server (the stats follow the log)
    csv = home.parent / "more.csv"
    lines = ["event_id,ts,user_id,anchor_id,item_id,kind,event"]
    lines += [f"f{j},2024-05-02T09:00:00,u{j},tent,{low},complement,impression" for j in range(3000)]
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "tiein.cli", "feedback", "ingest", str(csv), "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    after = api.get(
        "/v1/products/tent/related", params={"kind": "complement", "k": 9, "feedback": "true"}
    ).json()
    row = next(x for x in after["related"] if x["product_id"] == low)
    assert row["feedback"]["impressions"] == 3300 and row["feedback"]["successes"] == 150


def test_feedback_cache_refreshes_in_the_background(tmp_path: Path) -> None:
    """With a refresh interval, requests keep the previous statistics while new ones are computed
    in a thread, and see the new events once it is done; with 0 they see them at once."""
    import time

    from tiein.api import FeedbackCache, Settings
    from tiein.errors import ConfigError
    from tiein.feedback import ingest_records

    ingest_records(tmp_path, [event(1, "tent", "chair")])
    # 1.5 s: the ingest below must finish within it (0.2-0.4 s on a loaded 2-core machine)
    cache = FeedbackCache(tmp_path, refresh_s=1.5)
    first = cache.stats()  # the first request computes in line
    assert first.kinds.to_pylist()[0]["impressions"] == 1
    ingest_records(tmp_path, [event(2, "tent", "chair"), event(3, "tent", "chair", what="purchase")])
    assert cache.stats() is first  # looked at the log less than refresh_s ago
    time.sleep(1.55)
    assert cache.stats() is first  # the log changed: a refresh starts, this request does not wait
    cache.wait(30)
    fresh = cache.stats()
    assert fresh is not first
    assert (fresh.kinds.to_pylist()[0]["impressions"], fresh.kinds.to_pylist()[0]["purchases"]) == (2, 1)
    # refresh 0: every change is computed before the next answer
    now = FeedbackCache(tmp_path, refresh_s=0)
    assert now.stats().kinds.to_pylist()[0]["impressions"] == 2
    ingest_records(tmp_path, [event(4, "tent", "lamp")])
    assert now.stats().kinds.to_pylist()[0]["impressions"] == 3
    with pytest.raises(ConfigError, match="feedback_refresh_s"):
        Settings(feedback_refresh_s=-1)
    assert Settings.from_env({"TIEIN_API_FEEDBACK_REFRESH": "2.5"}).feedback_refresh_s == 2.5
