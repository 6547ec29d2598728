"""The HTTP API over real HTTP: `tiein serve` started as a subprocess on a free loopback port,
against graphs built by the real pipeline from the camping fixture (tests/fixtures/camping; its
README has the orders behind every number asserted here).

Hand-checkable facts used below (tests/fixtures/camping/README.md): the tent costs 299; the
chair (129, 43 %) and the lamp (99, 33 %) are its only in-band, in-stock complements; pegs (19)
are too cheap, tent_b is a substitute; 9 orders hold tent + pegs.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

import tiein

FIXTURES = Path(__file__).parent / "fixtures"
CAMPING = FIXTURES / "camping"
SCENES = FIXTURES / "scenes" / "camping.yaml"
TOKEN = "s3cret-token"


# ----------------------------------------------------------------------------- helpers
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_home(home: Path, *, embeddings: bool = True) -> Path:
    """Build the camping fixture (with its scenes) into ``home`` through the real pipeline."""
    from tiein.pipeline import BuildOptions, build

    build(
        BuildOptions(
            catalog=CAMPING / "catalog.csv",
            orders=CAMPING / "orders.csv",
            scenes=SCENES,
            home=home,
            embeddings=embeddings,
            threads=1,
        )
    )
    return home


def camping_home(factory: pytest.TempPathFactory) -> Path:
    """The camping home, built once per test session (shared by the API test modules)."""
    home = factory.getbasetemp() / "api-camping-home"
    if not (home / "graph" / "CURRENT").exists():
        build_home(home)
    return home


def wait_ready(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/openapi.json", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the server at {url} did not start in {timeout} s")


@contextmanager
def serve(*args: str, env: dict[str, str] | None = None, log: Path | None = None) -> Iterator[str]:
    """``tiein serve ARGS`` in a subprocess on a free port; yields its base URL."""
    port = free_port()
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TIEIN_API_NEO4J_RETRY": "0", **(env or {})}
    for key in ("TIEIN_STORE", "TIEIN_API_TOKEN", "TIEIN_API_CORS"):
        if key not in (env or {}):
            full_env.pop(key, None)
    log_file = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "tiein.cli", "serve", "--port", str(port), "--log-level", "warning", *args],
        env=full_env,
        stdout=log_file,
        stderr=log_file,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            log_file.close()  # type: ignore[union-attr]


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """A real uvicorn server for ``app`` in a thread of this process; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def assert_envelope(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the error envelope with ``status`` and ``code``; returns the error."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"code", "message", "details"}
    assert err["code"] == code, err
    assert isinstance(err["message"], str) and err["message"]
    assert "Traceback" not in r.text
    return err


def catalog_rows() -> dict[str, dict[str, str]]:
    with open(CAMPING / "catalog.csv", encoding="utf-8") as f:
        return {r["product_id"]: r for r in csv.DictReader(f)}


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return camping_home(tmp_path_factory)


@pytest.fixture(scope="module")
def api(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    log = tmp_path_factory.mktemp("api-log") / "server.log"
    with serve("--home", str(home), log=log) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def bare_home(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same graph without the FAISS index (copied; the original stays untouched)."""
    bare = tmp_path_factory.mktemp("bare") / "home"
    shutil.copytree(home / "graph", bare / "graph")
    return bare


@pytest.fixture(scope="module")
def secured(bare_home: Path) -> Iterator[str]:
    """A server with a token and CORS for one origin, on the index-less home."""
    with serve(
        "--home", str(bare_home), "--cors", "https://shop.example", env={"TIEIN_API_TOKEN": TOKEN}
    ) as url:
        yield url


# ----------------------------------------------------------------------------- endpoints
def test_health_reports_graph_counts_and_version(api: httpx.Client) -> None:
    r = api.get("/v1/health")
    assert r.status_code == 200
    h = r.json()
    assert h["status"] == "ok" and h["version"] == tiein.__version__ and h["store"] == "embedded"
    assert h["graph"]["nodes"]["Product"] == len(catalog_rows())
    assert h["graph"]["relationships"]["COMPLEMENT"] > 0
    assert h["graph"]["meta"]["source"] == "catalog"
    assert h["search"] is True


def test_product_lookup_matches_the_catalog(api: httpx.Client) -> None:
    row = catalog_rows()["tent"]
    p = api.get("/v1/products/tent").json()
    assert p["product_id"] == "tent"
    assert p["title"] == row["title"] and p["brand"] == row["brand"]
    assert p["price"] == float(row["price"]) and p["stock"] == int(row["stock"])
    # unknown stock in the file is null, not 0
    assert api.get("/v1/products/bag_syn").json()["stock"] is None


def test_related_is_the_cli_answer(api: httpx.Client, home: Path) -> None:
    r = api.get("/v1/products/tent/related", params={"kind": "complement", "k": 5})
    assert r.status_code == 200
    doc = r.json()
    assert doc["product"]["product_id"] == "tent" and doc["kind"] == "complement"
    rows = doc["related"]
    assert 0 < len(rows) <= 5
    scores = [row["score"] for row in rows]
    assert scores == sorted(scores, reverse=True)
    pegs = next(row for row in rows if row["product_id"] == "pegs")
    assert pegs["n_ab"] == 9 and pegs["evidence"]["bought_together"] == 9
    assert "9" in pegs["explanation_en"] and "9" in pegs["explanation_zh"]
    assert all(row["explanation_en"] and row["explanation_zh"] for row in rows)
    assert "tent_b" not in [row["product_id"] for row in rows]
    # the same JSON as `tiein related --json` (one code path)
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "tiein.cli",
            "related",
            "tent",
            "--kind",
            "complement",
            "-k",
            "5",
            "--json",
            "--home",
            str(home),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert json.loads(cli.stdout) == doc


def test_related_substitutes_of_the_tent(api: httpx.Client) -> None:
    rows = api.get("/v1/products/tent/related", params={"kind": "substitute"}).json()["related"]
    assert "tent_b" in [row["product_id"] for row in rows]
    assert all(row["kind"] == "substitute" for row in rows)


def test_bundle_of_the_tent(api: httpx.Client) -> None:
    b = api.get("/v1/products/tent/bundle").json()
    assert b["reason"] is None
    assert [i["product"]["product_id"] for i in b["items"]] == ["chair", "lamp"]
    assert b["total"] == 299 + 129 + 99
    assert b["suggested_price"] == 468  # 527 × 0.9 = 474.3 → the sayable 468
    assert b["saving"] == 59 and "468" in b["pitch"]["zh"] and "468" in b["pitch"]["en"]
    assert all(i["explanation"]["zh"] and i["explanation"]["en"] for i in b["items"])


def test_bundle_budget_and_size(api: httpx.Client) -> None:
    # 299 + 129 = 428 > 400, 299 + 99 = 398 fits
    b = api.get("/v1/products/tent/bundle", params={"budget": 400}).json()
    assert [i["product"]["product_id"] for i in b["items"]] == ["lamp"] and b["budget"] == 400
    assert [
        i["product"]["product_id"] for i in api.get("/v1/products/tent/bundle?size=2").json()["items"]
    ] == ["chair"]
    # no bundle is an answer with a reason, not an error
    none = api.get("/v1/products/tent/bundle", params={"budget": 100})
    assert none.status_code == 200 and none.json()["items"] == []
    assert none.json()["reason"]["code"] == "anchor_over_budget"


def test_bundle_scene_mix_and_discount(api: httpx.Client) -> None:
    b = api.get("/v1/products/tent/bundle", params={"scene": "露营"}).json()
    assert b["scene"] == {"scene_id": "camping", "name": "露营"}
    # the scene's roles in order: folding chair, then camp lamp (tests/fixtures/scenes/camping.yaml)
    assert [(i["product"]["product_id"], i["role"]) for i in b["items"]] == [
        ("chair", "folding chair"),
        ("lamp", "camp lamp"),
    ]
    err = assert_envelope(api.get("/v1/products/tent/bundle", params={"scene": "nowhere"}), 404, "not_found")
    assert "nowhere" in err["message"]
    # mix: the add-ons' sales roles in the order asked ('+' in a URL arrives as a space: both work)
    for raw in ("hero+profit", "hero,profit"):
        m = api.get(f"/v1/products/tent/bundle?mix={raw}").json()
        assert m["mix"] == ["hero", "profit"]
        roles = [
            api.get(f"/v1/products/{i['product']['product_id']}").json()["sales_role"] for i in m["items"]
        ]
        assert roles == ["hero", "profit"][: len(roles)] and roles
    # 20 % off 527 is 421.60; the sayable price ending in 8 at or below it is 418
    d = api.get("/v1/products/tent/bundle", params={"discount": 0.2}).json()
    assert d["discount"] == 0.2 and d["suggested_price"] == 418


def test_cart_addons_and_top_ups(api: httpx.Client) -> None:
    r = api.post("/v1/cart/addons", json={"cart": ["tent"], "threshold": 400, "k": 3})
    assert r.status_code == 200, r.text
    a = r.json()
    assert [p["product_id"] for p in a["cart"]] == ["tent"] and a["total"] == 299
    ids = [i["product"]["product_id"] for i in a["items"]]
    assert 0 < len(ids) <= 3
    assert "tent_b" not in ids and "lamp_pro" not in ids  # substitute; out of stock
    assert a["gap"] == 101
    overspends = [t["overspend"] for t in a["top_ups"]]
    assert overspends and overspends == sorted(overspends)
    for t in a["top_ups"]:
        assert t["new_total"] >= 400 and t["overspend"] == pytest.approx(t["new_total"] - 400)
        assert t["product"]["product_id"] not in ("tent_b", "lamp_pro", "tent")


def test_search_by_text_in_two_languages(api: httpx.Client) -> None:
    for q in ("sleeping bag", "睡袋"):
        r = api.get("/v1/search", params={"q": q, "k": 3})
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["query"] == q and doc["model"]
        ids = [h["product_id"] for h in doc["results"]]
        assert len(ids) == 3 and ids[0] == "bag" and "bag_syn" in ids
        sims = [h["similarity"] for h in doc["results"]]
        assert sims == sorted(sims, reverse=True)


def test_scenes_list_and_lookup_by_chinese_name(api: httpx.Client) -> None:
    scenes = api.get("/v1/scenes").json()["scenes"]
    camping = next(s for s in scenes if s["scene_id"] == "camping")
    assert camping["name"] == "露营" and camping["source"] == "user"
    s = api.get("/v1/scenes/露营").json()
    assert s["scene_id"] == "camping"
    members = {p["product_id"] for role in s["roles"] for p in role["products"]}
    assert {"chair", "lamp"} <= members and s["members"] == len(members)


def test_cypher_row_cap_and_read_only(api: httpx.Client) -> None:
    q = "MATCH (p:Product) RETURN p.product_id AS id ORDER BY id"
    r = api.post("/v1/cypher", json={"query": q, "limit": 5})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["columns"] == ["id"] and doc["truncated"] is True and len(doc["rows"]) == 5
    full = api.post("/v1/cypher", json={"query": q}).json()
    assert full["truncated"] is False and len(full["rows"]) == len(catalog_rows())
    err = assert_envelope(
        api.post("/v1/cypher", json={"query": "MATCH (p:Product) SET p.price = 0"}), 403, "write_refused"
    )
    assert "SET" in err["message"]
    assert_envelope(api.post("/v1/cypher", json={"query": "MATCH (p:Product RETURN p"}), 400, "invalid_query")
    err = assert_envelope(api.post("/v1/cypher", json={"query": q, "limit": 10**6}), 422, "invalid_parameter")
    assert "limit" in err["message"]
    # the write was refused, not half done
    assert api.get("/v1/products/tent").json()["price"] == 299


def test_html_view_is_served(api: httpx.Client) -> None:
    r = api.get("/v1/products/tent/view")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'href="../chair/view"' in r.text and "468" in r.text
    assert "http://" not in r.text and "https://" not in r.text  # self-contained: no CDN


def test_openapi_documents_every_endpoint_and_the_envelope(api: httpx.Client) -> None:
    spec = api.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {
        "/v1/health",
        "/v1/products/{product_id}",
        "/v1/products/{product_id}/related",
        "/v1/products/{product_id}/bundle",
        "/v1/products/{product_id}/view",
        "/v1/cart/addons",
        "/v1/search",
        "/v1/scenes",
        "/v1/scenes/{name}",
        "/v1/cypher",
    } <= paths
    related = spec["paths"]["/v1/products/{product_id}/related"]["get"]
    assert related["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ErrorEnvelope"
    )
    assert related["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ErrorEnvelope"
    )
    item = spec["components"]["schemas"]["RelatedItem"]["properties"]
    assert {"explanation_zh", "explanation_en", "evidence", "score", "product_id"} <= set(item)
    assert api.get("/docs").status_code == 200


# ----------------------------------------------------------------------------- errors
def test_unknown_product_is_404_naming_the_id(api: httpx.Client) -> None:
    for path in (
        "/v1/products/no-such-sku",
        "/v1/products/no-such-sku/related",
        "/v1/products/no-such-sku/bundle",
        "/v1/products/no-such-sku/view",
    ):
        err = assert_envelope(api.get(path), 404, "product_not_found")
        assert "no-such-sku" in err["message"] and err["details"]["product_id"] == "no-such-sku"
    # one unknown id no longer fails the cart: it is named in unknown_ids and the rest answered
    partial = api.post("/v1/cart/addons", json={"cart": ["tent", "ghost"]})
    assert partial.status_code == 200 and partial.json()["unknown_ids"] == ["ghost"]
    err = assert_envelope(api.post("/v1/cart/addons", json={"cart": ["ghost"]}), 404, "product_not_found")
    assert err["details"]["product_id"] == "ghost"
    err = assert_envelope(api.get("/v1/scenes/nowhere"), 404, "not_found")
    assert "nowhere" in err["message"]
    assert_envelope(api.get("/v1/no/such/endpoint"), 404, "not_found")
    assert_envelope(api.delete("/v1/products/tent"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("/v1/products/tent/related", {"kind": "cousin"}, "kind"),
        ("/v1/products/tent/related", {"k": 0}, "k"),
        ("/v1/products/tent/related", {"k": 101}, "k"),  # above the server's cap (max_k 100)
        ("/v1/products/tent/related", {"k": "ten"}, "k"),
        ("/v1/products/tent/bundle", {"size": 1}, "size"),
        ("/v1/products/tent/bundle", {"budget": -5}, "budget"),
        ("/v1/products/tent/bundle", {"budget": "nan"}, "budget"),
        ("/v1/products/tent/bundle", {"discount": 1}, "discount"),
        ("/v1/search", {}, "q"),
        ("/v1/search", {"q": "x" * 1001}, "q"),
    ],
)
def test_bad_parameter_is_422_naming_it(api: httpx.Client, path: str, params: dict, parameter: str) -> None:
    err = assert_envelope(api.get(path, params=params), 422, "invalid_parameter")
    assert f"'{parameter}'" in err["message"]
    assert parameter in [e["parameter"] for e in err["details"]["errors"]]


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        ({"cart": []}, "cart"),
        ({}, "cart"),
        ({"cart": ["tent"], "k": 0}, "k"),
        ({"cart": ["tent"], "threshold": 0}, "threshold"),
        ({"cart": ["tent"], "coupon": "X"}, "coupon"),
        ({"cart": "tent"}, "cart"),
    ],
)
def test_bad_body_is_422_naming_the_field(api: httpx.Client, body: dict, parameter: str) -> None:
    err = assert_envelope(api.post("/v1/cart/addons", json=body), 422, "invalid_parameter")
    assert parameter in err["message"]


def test_broken_json_and_lone_surrogates_are_422(api: httpx.Client) -> None:
    headers = {"content-type": "application/json"}
    assert_envelope(
        api.post("/v1/cart/addons", content=b'{"cart": [', headers=headers), 422, "invalid_parameter"
    )
    # valid JSON, but text no store can hold: a clear 422, never a 500 from the store driver
    err = assert_envelope(
        api.post("/v1/cart/addons", content=b'{"cart": ["\\ud800"]}', headers=headers),
        422,
        "invalid_parameter",
    )
    assert "cart[0]" in err["message"]
    assert_envelope(
        api.post("/v1/cypher", content=b'{"query": "RETURN \\udc00"}', headers=headers),
        422,
        "invalid_parameter",
    )


def test_auth_token_and_cors(secured: str) -> None:
    with httpx.Client(base_url=secured, timeout=30) as c:
        err = assert_envelope(c.get("/v1/products/tent"), 401, "unauthorized")
        assert "token" in err["message"]
        assert c.get("/v1/products/tent").headers["www-authenticate"] == "Bearer"
        assert_envelope(
            c.get("/v1/products/tent", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized"
        )
        assert_envelope(c.post("/v1/cart/addons", json={"cart": ["tent"]}), 401, "unauthorized")
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert c.get("/v1/products/tent", headers=good).json()["product_id"] == "tent"
        # health stays open for load balancers / healthchecks; the docs too
        assert c.get("/v1/health").status_code == 200
        assert c.get("/openapi.json").status_code == 200
        # the HTML page takes the token once in the URL and keeps it in a cookie
        assert_envelope(c.get("/v1/products/tent/view"), 401, "unauthorized")
        page = c.get("/v1/products/tent/view", params={"token": TOKEN})  # then to the URL without it
        assert page.status_code == 303 and "tiein_token" in page.headers["set-cookie"]
        assert page.headers["location"] == "/v1/products/tent/view"
        assert c.get(page.headers["location"]).status_code == 200
        assert c.get("/v1/products/chair/view").status_code == 200  # the cookie now
        # CORS: the configured origin only
        pre = c.options(
            "/v1/products/tent",
            headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "GET"},
        )
        assert pre.headers.get("access-control-allow-origin") == "https://shop.example"
        other = c.get("/v1/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_search_without_an_index_is_503(secured: str) -> None:
    r = httpx.get(
        f"{secured}/v1/search", params={"q": "tent"}, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )
    err = assert_envelope(r, 503, "unavailable")
    assert "index" in err["message"]


def test_neo4j_down_is_503() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with serve("--store", f"bolt://127.0.0.1:{closed}", "--home", "/nonexistent-tiein-home") as url:
        with httpx.Client(base_url=url, timeout=60) as c:
            for path in ("/v1/health", "/v1/products/tent", "/v1/products/tent/related", "/v1/scenes"):
                err = assert_envelope(c.get(path), 503, "store_unavailable")
                assert "cannot be reached" in err["message"]
            assert_envelope(c.post("/v1/cart/addons", json={"cart": ["tent"]}), 503, "store_unavailable")


def test_500s_are_envelopes_without_tracebacks(home: Path, tmp_path: Path) -> None:
    """A broken store (corrupt build meta) answers 503 and an unexpected exception the envelope
    with an error id; the traceback goes to the server log only."""
    from tiein.api import Settings, create_app
    from tiein.graph.ladybug_store import EmbeddedStore

    copy = tmp_path / "home"
    shutil.copytree(home / "graph", copy / "graph")
    gen = (copy / "graph" / "CURRENT").read_text().strip()
    (copy / "graph" / gen / "meta.json").write_text("{not json", encoding="utf-8")

    class Failing(EmbeddedStore):
        """The real store, except that listing scenes hits a bug."""

        def scenes(self) -> list[dict[str, Any]]:
            raise ZeroDivisionError("division by zero in a scene count")

    store = Failing(copy / "graph")
    with serve_in_thread(create_app(Settings(home=copy), store=store)) as url:
        # a damaged store is unavailable (503, what to do, no filesystem path), not a bug
        err = assert_envelope(httpx.get(f"{url}/v1/health", timeout=30), 503, "store_unavailable")
        assert "meta.json" in err["message"] and str(copy) not in err["message"]
        r = httpx.get(f"{url}/v1/scenes", timeout=30)
        err = assert_envelope(r, 500, "internal_error")
        assert "ZeroDivisionError" not in r.text and "division" not in r.text
        assert err["details"]["error_id"] in err["message"]
        # the rest of the store still answers
        assert httpx.get(f"{url}/v1/products/tent", timeout=30).status_code == 200
    store.close()


# ----------------------------------------------------------------------------- serving
def test_serve_refuses_a_public_host_without_token() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tiein.cli",
            "serve",
            "--host",
            "0.0.0.0",
            "--home",
            "/nonexistent-tiein-home",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "TIEIN_API_TOKEN"},
    )
    assert proc.returncode == 2
    assert "without a token" in proc.stderr and "Traceback" not in proc.stderr


def test_concurrent_requests_get_the_same_answers(api: httpx.Client) -> None:
    """The embedded store behind the thread pool: 8 clients × 25 mixed requests, all answered
    and identical to the sequential answers."""
    paths = [
        "/v1/products/tent/related?kind=complement",
        "/v1/products/tent/bundle",
        "/v1/products/chair/related?kind=substitute",
        "/v1/products/lamp/bundle",
    ]
    expected = {p: api.get(p).json() for p in paths}
    failures: list[str] = []

    def client(i: int) -> None:
        with httpx.Client(base_url=str(api.base_url), timeout=60) as c:
            for j in range(25):
                p = paths[(i + j) % len(paths)]
                r = c.get(p)
                if r.status_code != 200 or r.json() != expected[p]:
                    failures.append(f"{p}: {r.status_code}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_snapshot_serving_gives_the_same_answers(api: httpx.Client, home: Path) -> None:
    """`tiein serve` answers from tiein.graph.snapshot (the graph in memory; the default for the
    embedded store): every read endpoint returns exactly what `--no-snapshot` (reading LadybugDB
    per request) returns."""
    requests = [
        ("GET", f"/v1/products/{pid}/{what}", params, None)
        for pid in ("tent", "chair", "lamp", "tent_b")
        for what, params in (
            ("related", {"kind": "complement"}),
            ("related", {"kind": "substitute"}),
            ("bundle", {}),
            ("bundle", {"scene": "露营", "size": 4}),
        )
    ]
    requests += [
        ("POST", "/v1/cart/addons", None, {"cart": ["tent", "chair"], "threshold": 600}),
        ("GET", "/v1/scenes", None, None),
        ("GET", "/v1/products/nope/related", None, None),
    ]
    assert api.get("/v1/health").json()["snapshot"] is True
    with serve("--home", str(home), "--no-snapshot") as url, httpx.Client(base_url=url, timeout=60) as snap:
        assert snap.get("/v1/health").json()["snapshot"] is False
        for method, path, params, body in requests:
            a = api.request(method, path, params=params, json=body)
            b = snap.request(method, path, params=params, json=body)
            assert (a.status_code, a.json()) == (b.status_code, b.json()), path


def test_snapshot_setting_errors(home: Path) -> None:
    def serve_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tiein.cli", "serve", "--port", "0", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **env},
        )

    neo = serve_cli("--snapshot", "--store", "bolt://127.0.0.1:1")
    assert neo.returncode == 2 and "embedded store only" in neo.stderr and "Traceback" not in neo.stderr
    bad = serve_cli("--home", str(home), TIEIN_API_SNAPSHOT="maybe")
    assert (
        bad.returncode == 2 and "TIEIN_API_SNAPSHOT='maybe'" in bad.stderr and "true or false" in bad.stderr
    )


@pytest.mark.parametrize("mode", [("--no-snapshot",), ()], ids=["ladybug", "snapshot"])
def test_a_rebuild_is_seen_without_restart(tmp_path: Path, mode: tuple[str, ...]) -> None:
    """The server opens the store once; a `tiein build` into the same home from another process
    switches the generation and the running server answers from the new graph (the snapshot
    reads it in the background and swaps when it is whole: no request waits for the reload)."""
    home = build_home(tmp_path / "home", embeddings=False)
    with serve("--home", str(home), *mode) as url:
        assert_envelope(httpx.get(f"{url}/v1/products/phone_x", timeout=30), 404, "product_not_found")
        shop = FIXTURES / "shop"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "tiein.cli",
                "build",
                "--catalog",
                str(shop / "catalog.csv"),
                "--orders",
                str(shop / "orders.csv"),
                "--home",
                str(home),
                "--no-embeddings",
                "--quiet",
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
        deadline = time.monotonic() + 30
        r = httpx.get(f"{url}/v1/products/phone_x", timeout=30)
        while r.status_code == 404 and time.monotonic() < deadline:  # the old graph until the swap
            time.sleep(0.1)
            r = httpx.get(f"{url}/v1/products/phone_x", timeout=30)
        assert r.status_code == 200 and r.json()["title"].startswith("Apex X")
        assert_envelope(httpx.get(f"{url}/v1/products/tent_b", timeout=30), 404, "product_not_found")


def test_ids_with_slashes_and_spaces_are_addressable(tmp_path: Path) -> None:
    """SKUs such as ``AB/12`` work in every product route, sent raw or percent-encoded, and the
    analyst page links to them."""
    from urllib.parse import quote

    from tiein.api import Settings, create_app
    from tiein.graph import open_store
    from tiein.pipeline import BuildOptions, build

    catalog, orders = tmp_path / "catalog.csv", tmp_path / "orders.csv"
    items = [
        ("AB/12", "Camping tent", "tents", 300),
        ("CD/34", "Folding chair", "chairs", 120),
        ("EF 56", "Camp lamp", "lamps", 90),
        ("ZZ/9", "Kitchen towel", "kitchen", 5),
    ]
    catalog.write_text(
        "product_id,title,category,price,stock\n" + "".join(f"{i},{t},{c},{p},5\n" for i, t, c, p in items)
    )
    lines = [(f"o{n}", i) for n in range(12) for i in ("AB/12", "CD/34", "EF 56")]
    lines += [(f"t{n}", "ZZ/9") for n in range(24)] + [(f"t{n}", "CD/34") for n in range(3)]
    orders.write_text("order_id,product_id\n" + "".join(f"{o},{i}\n" for o, i in lines))
    home = tmp_path / "home"
    build(BuildOptions(catalog=catalog, orders=orders, home=home, embeddings=False, threads=1))
    store = open_store(home / "graph")
    try:
        with serve_in_thread(create_app(Settings(home=home), store=store)) as url:
            for pid in ("AB/12", quote("AB/12", safe="")):
                assert httpx.get(f"{url}/v1/products/{pid}", timeout=30).json()["product_id"] == "AB/12"
                rel = httpx.get(f"{url}/v1/products/{pid}/related", timeout=30).json()
                assert rel["product"]["product_id"] == "AB/12"
                assert "CD/34" in [r["product_id"] for r in rel["related"]]
                b = httpx.get(f"{url}/v1/products/{pid}/bundle", timeout=30)
                assert b.status_code == 200 and b.json()["anchor"]["product_id"] == "AB/12"
            assert httpx.get(f"{url}/v1/products/EF%2056", timeout=30).json()["title"] == "Camp lamp"
            page = httpx.get(f"{url}/v1/products/AB%2F12/view", timeout=30)
            assert page.status_code == 200 and 'href="../CD%2F34/view"' in page.text
            # the link resolves to the neighbour's page
            assert httpx.get(f"{url}/v1/products/CD%2F34/view", timeout=30).status_code == 200
            err = httpx.get(f"{url}/v1/products/AB/13/related", timeout=30)
            assert err.status_code == 404 and "AB/13" in err.json()["error"]["message"]
    finally:
        store.close()
