"""The Neo4j store's Python logic, without a Neo4j server (none can run here).

- the REAL ``neo4j`` driver against a closed loopback port: unreachable → StoreUnavailable, fast;
- the REAL driver against a minimal Bolt 5.4 server stub in this file (a test double at the
  protocol level): proves what the store sends (one write transaction per load, batch sizes,
  exact parameter values as they cross the wire, READ mode and time limit for analyst queries,
  rollback on failure) and how server failures are translated;
- ``connection_settings`` / ``from_url`` parsing, Arrow → parameter conversion, batching.

The same store runs the shared contract suite against a real Neo4j when TIEIN_NEO4J_URI is set
(tests/stores.py, docker/README.md).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import neo4j
import pyarrow as pa
import pytest

from tiein.errors import (
    ConfigError,
    CypherError,
    InputError,
    ProductNotFound,
    StoreError,
    StoreUnavailable,
    WriteRefused,
)
from tiein.graph import cypher_neo4j as cy
from tiein.graph.base import PRODUCT_FIELDS, RELATED_FIELDS, GraphStore
from tiein.graph.neo4j_store import Neo4jStore
from tiein.graph.neo4j_support import batches, connection_settings, node_rows, rel_rows
from tiein.model import PRODUCTS, RELATIONS, GraphData

# ============================================================================ a Bolt 5.4 stub
# PackStream v1 (https://neo4j.com/docs/bolt/current/packstream/), just what Bolt needs.


def _pack(v: Any) -> bytes:
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if -16 <= v < 128:
            return struct.pack(">b", v)
        return b"\xcb" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xc1" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode("utf-8")
        return (bytes([0x80 + len(b)]) if len(b) < 16 else b"\xd2" + struct.pack(">I", len(b))) + b
    if isinstance(v, list):
        head = bytes([0x90 + len(v)]) if len(v) < 16 else b"\xd6" + struct.pack(">I", len(v))
        return head + b"".join(_pack(x) for x in v)
    if isinstance(v, dict):
        head = bytes([0xA0 + len(v)]) if len(v) < 16 else b"\xda" + struct.pack(">I", len(v))
        return head + b"".join(_pack(k) + _pack(x) for k, x in v.items())
    raise TypeError(type(v))


class _Struct(tuple):
    """A decoded PackStream structure: (tag, fields...)."""


def _unpack(buf: bytes, i: int = 0) -> tuple[Any, int]:
    m = buf[i]
    i += 1
    if m < 0x80:
        return m, i
    if m >= 0xF0:
        return m - 0x100, i
    hi, lo = m & 0xF0, m & 0x0F
    if hi == 0x80:
        return buf[i : i + lo].decode(), i + lo
    if hi == 0x90:
        return _seq(buf, i, lo)
    if hi == 0xA0:
        return _map(buf, i, lo)
    if hi == 0xB0:
        tag = buf[i]
        fields, i = _seq(buf, i + 1, lo)
        return _Struct((tag, *fields)), i
    if m == 0xC0:
        return None, i
    if m in (0xC2, 0xC3):
        return m == 0xC3, i
    if m == 0xC1:
        return struct.unpack(">d", buf[i : i + 8])[0], i + 8
    ints = {0xC8: ">b", 0xC9: ">h", 0xCA: ">i", 0xCB: ">q"}
    if m in ints:
        n = struct.calcsize(ints[m])
        return struct.unpack(ints[m], buf[i : i + n])[0], i + n
    sizes = {0: ">B", 1: ">H", 2: ">I"}
    fmt = sizes[lo & 0x3]
    n = struct.calcsize(fmt)
    size = struct.unpack(fmt, buf[i : i + n])[0]
    i += n
    if m in (0xD0, 0xD1, 0xD2):
        return buf[i : i + size].decode(), i + size
    if m in (0xCC, 0xCD, 0xCE):
        return bytes(buf[i : i + size]), i + size
    if m in (0xD4, 0xD5, 0xD6):
        return _seq(buf, i, size)
    if m in (0xD8, 0xD9, 0xDA):
        return _map(buf, i, size)
    raise ValueError(f"marker {m:#x}")


def _seq(buf: bytes, i: int, n: int) -> tuple[list[Any], int]:
    out = []
    for _ in range(n):
        v, i = _unpack(buf, i)
        out.append(v)
    return out, i


def _map(buf: bytes, i: int, n: int) -> tuple[dict[str, Any], int]:
    out = {}
    for _ in range(n):
        k, i = _unpack(buf, i)
        out[k], i = _unpack(buf, i)
    return out, i


MSG = {
    0x01: "HELLO",
    0x02: "GOODBYE",
    0x0F: "RESET",
    0x10: "RUN",
    0x11: "BEGIN",
    0x12: "COMMIT",
    0x13: "ROLLBACK",
    0x2F: "DISCARD",
    0x3F: "PULL",
    0x54: "TELEMETRY",
    0x6A: "LOGON",
    0x6B: "LOGOFF",
}


class Failure(Exception):
    """Raised by a stub handler: the server answers FAILURE {code, message}."""

    def __init__(self, code: str, message: str = "stub failure") -> None:
        super().__init__(message)
        self.code, self.message = code, message


# handler(query, params) -> rows as dicts (all with the same keys), or raise Failure
Handler = Callable[[str, dict[str, Any]], list[dict[str, Any]]]


class BoltStub:
    """A one-connection-at-a-time Bolt 5.4 server on 127.0.0.1 answering RUN with ``handler``
    and recording every message (name, fields) in ``log``."""

    def __init__(
        self,
        handler: Handler,
        *,
        logon_failure: str | None = None,
        notifications: list[dict[str, Any]] | None = None,
    ) -> None:
        self.handler = handler
        self.logon_failure = logon_failure
        self.notifications = notifications or []
        self.log: list[tuple[str, list[Any]]] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"bolt://127.0.0.1:{self.port}"

    def names(self) -> list[str]:
        return [n for n, _ in self.log if n not in ("HELLO", "LOGON", "GOODBYE", "RESET", "TELEMETRY")]

    def runs(self) -> list[tuple[str, dict[str, Any]]]:
        return [(f[0], f[1]) for n, f in self.log if n == "RUN"]

    def close(self) -> None:
        self._stop = True
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn: socket.socket) -> None:
        try:
            with conn:
                self._recv(conn, 20)  # magic + 4 version proposals
                conn.sendall(b"\x00\x00\x04\x05")  # Bolt 5.4
                failed = False
                pending: list[list[Any]] = []
                while True:
                    msg = self._message(conn)
                    if msg is None:
                        return
                    name = MSG.get(msg[0], hex(msg[0]))
                    fields = list(msg[1:])
                    self.log.append((name, fields))
                    if name == "GOODBYE":
                        return
                    if name == "RESET":
                        failed, pending = False, []
                        self._send(conn, 0x70, {})
                        continue
                    if failed:
                        self._send(conn, 0x7E)
                        continue
                    try:
                        if name == "HELLO":
                            self._send(conn, 0x70, {"server": "Neo4j/5.26.0", "connection_id": "bolt-1"})
                        elif name == "LOGON":
                            if self.logon_failure:
                                raise Failure(self.logon_failure, "The client is unauthorized")
                            self._send(conn, 0x70, {})
                        elif name == "RUN":
                            rows = self.handler(fields[0], fields[1])
                            keys = list(rows[0]) if rows else []
                            pending = [[r[k] for k in keys] for r in rows]
                            self._send(conn, 0x70, {"fields": keys, "t_first": 0, "qid": 0})
                        elif name == "PULL":
                            for values in pending:
                                self._send(conn, 0x71, values)
                            pending = []
                            meta = {"has_more": False, "t_last": 0, "type": "r", "db": "neo4j"}
                            if self.notifications:
                                meta["notifications"] = self.notifications
                            self._send(conn, 0x70, meta)
                        elif name == "DISCARD":
                            pending = []
                            self._send(conn, 0x70, {"has_more": False, "db": "neo4j"})
                        elif name == "COMMIT":
                            self._send(conn, 0x70, {"bookmark": "stub:1"})
                        else:  # BEGIN, ROLLBACK, TELEMETRY, LOGOFF
                            self._send(conn, 0x70, {})
                    except Failure as f:
                        failed = True
                        self._send(conn, 0x7F, {"code": f.code, "message": f.message})
        except OSError:
            return

    @staticmethod
    def _recv(conn: socket.socket, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def _message(self, conn: socket.socket) -> _Struct | None:
        data = b""
        while True:
            head = self._recv(conn, 2)
            if head is None:
                return None
            size = struct.unpack(">H", head)[0]
            if size == 0:
                if data:
                    break
                continue  # NOOP keep-alive
            chunk = self._recv(conn, size)
            if chunk is None:
                return None
            data += chunk
        msg, _ = _unpack(data)
        return msg

    @staticmethod
    def _send(conn: socket.socket, tag: int, *fields: Any) -> None:
        body = bytes([0xB0 + len(fields), tag]) + b"".join(_pack(f) for f in fields)
        out = b""
        for i in range(0, len(body), 0xFFFF):
            part = body[i : i + 0xFFFF]
            out += struct.pack(">H", len(part)) + part
        conn.sendall(out + b"\x00\x00")


@pytest.fixture
def stub_store() -> Any:
    """make(handler, **stub_options) -> (store, stub) on the real driver; closed afterwards."""
    made: list[tuple[Neo4jStore, BoltStub]] = []

    def make(handler: Handler, batch_size: int = 2, **kw: Any) -> tuple[Neo4jStore, BoltStub]:
        stub = BoltStub(handler, **kw)
        store = Neo4jStore.from_url(
            stub.url,
            "neo4j",
            "secret",
            batch_size=batch_size,
            connection_timeout=2.0,
            max_transaction_retry_time=0.0,
        )
        made.append((store, stub))
        return store, stub

    yield make
    for store, stub in made:
        store.close()
        stub.close()


# ============================================================================ fixtures: a tiny graph
def _products() -> pa.Table:
    return pa.table(
        {
            "product_id": ["p1", "p2", "p3"],
            "title": ["帐篷 Tent", "Sleeping bag", "Mat"],
            "category": ["tents", "bags", None],
            "category_path": ["outdoor > tents", "outdoor > bags", None],
            "brand": ["Acme", None, "Acme"],
            "price": [0.1 + 0.2, 1e-300, 19.99],
            "stock": [3, None, 0],
            "attributes": ['{"color": "green"}', None, None],
            "margin": [None, None, 0.25],
            "sales_role": ["hero", None, "profit"],
            "product_type": [None, None, None],
        },
        schema=PRODUCTS,
    )


def _relations() -> pa.Table:
    return pa.table(
        {
            "src": ["p1", "p1", "p2"],
            "dst": ["p2", "p3", "p1"],
            "kind": ["complement", "complement", "substitute"],
            "score": [0.7000000000000001, 1 / 3, 0.5],
            "n_ab": [12, 4, None],
            "lift": [2.5, 1.25, None],
            "confidence": [0.3, None, None],
            "co_view": [0, 1, 2],
            "similarity": [None, 0.123456789012345, 0.9],
            "category_relation": ["sibling", "different", "same"],
            "price_ratio": [3.3333333333333335, None, 0.5],
            "evidence": ['{"n_ab": 12}', "{}", None],
        },
        schema=RELATIONS,
    )


def _data() -> GraphData:
    return GraphData(products=_products(), relations=_relations(), meta={"source": "unit", "n": 3})


def _loading_handler(short_by: dict[str, int] | None = None) -> Handler:
    """Answers CREATE statements with ``created = len(rows)`` (less ``short_by[type]``)."""
    short_by = short_by or {}
    create_queries = {q: name for name, q in {**cy.CREATE_NODES, **cy.CREATE_RELS}.items()}

    def handler(query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        if query in create_queries:
            return [{"created": len(params["rows"]) - short_by.get(create_queries[query], 0)}]
        return []

    return handler


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ============================================================================ unreachable server
def test_closed_port_is_store_unavailable_fast() -> None:
    port = _free_port()  # bound then released: nothing listens there
    driver = neo4j.GraphDatabase.driver(
        f"bolt://127.0.0.1:{port}",
        auth=("neo4j", "x"),
        connection_timeout=1.0,
        max_transaction_retry_time=0.0,
    )
    store = Neo4jStore(driver)
    calls: list[Callable[[], Any]] = [
        lambda: store.product("p1"),
        lambda: store.related("p1", "complement"),
        lambda: store.stats(),
        lambda: store.query("RETURN 1"),
        lambda: store.replace(_data()),
        lambda: store.ping(),
    ]
    try:
        for call in calls:
            t0 = time.perf_counter()
            with pytest.raises(StoreUnavailable) as info:
                call()
            assert time.perf_counter() - t0 < 5
            assert isinstance(info.value.__cause__, neo4j.exceptions.ServiceUnavailable)
            assert info.value.status == 503
    finally:
        driver.close()


def test_validation_happens_before_any_connection() -> None:
    """Unknown kind / bad k / bad input never reach the (unreachable) server."""
    store = Neo4jStore.from_url(f"bolt://127.0.0.1:{_free_port()}", connection_timeout=1.0)
    try:
        with pytest.raises(ConfigError, match="complement, substitute, upsell, series"):
            store.related("p1", "bundle")
        for k in (0, -1, True, 2.5):
            with pytest.raises(ConfigError, match="positive integer"):
                store.related("p1", "complement", k)  # type: ignore[arg-type]
        bad = GraphData(
            products=_products(), relations=_relations().set_column(0, "src", pa.array(["zz"] * 3))
        )
        with pytest.raises(InputError, match="relations, row 1, column 'src'"):
            store.replace(bad)
        with pytest.raises(InputError, match="meta"):
            store.replace(GraphData(products=_products(), meta={"when": dt.datetime(2024, 1, 1)}))
        with pytest.raises(CypherError):
            store.query("   ")
    finally:
        store.close()


# ============================================================================ from_url
def test_connection_settings_precedence() -> None:
    env = {"TIEIN_NEO4J_USER": "envuser", "TIEIN_NEO4J_PASSWORD": "envpw", "TIEIN_NEO4J_DATABASE": "envdb"}
    s = connection_settings("bolt://db.example:7688", env=env)
    assert (s.uri, s.auth, s.database) == ("bolt://db.example:7688", ("envuser", "envpw"), "envdb")
    s = connection_settings("neo4j+s://al%40x:p%3Aw@db.example/shop?region=eu", env=env)
    assert (s.uri, s.auth, s.database) == ("neo4j+s://db.example?region=eu", ("al@x", "p:w"), "shop")
    s = connection_settings("bolt://u:pw@h/db", "argu", "argpw", "argdb", env=env)
    assert (s.auth, s.database) == (("argu", "argpw"), "argdb")
    s = connection_settings("bolt://h", env={})
    assert (s.uri, s.auth, s.database) == ("bolt://h", None, None)
    assert connection_settings("bolt://h", password="pw", env={}).auth == ("neo4j", "pw")
    assert "pw" not in repr(connection_settings("bolt://u:pw@h", env={}))


@pytest.mark.parametrize(
    "url", ["http://h:7474", "bolt://", "bolt://h/a/b", "bolt://h:notaport", "h:7687", "ladybug://x"]
)
def test_connection_settings_rejects(url: str) -> None:
    with pytest.raises(ConfigError, match="invalid Neo4j URL"):
        connection_settings(url, env={})


def test_bad_url_error_hides_password() -> None:
    with pytest.raises(ConfigError) as info:
        connection_settings("http://u:topsecret@h", env={})
    assert "topsecret" not in str(info.value)


def test_from_url_builds_an_owned_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIEIN_NEO4J_DATABASE", "fromenv")
    store = Neo4jStore.from_url("bolt://u:pw@127.0.0.1:1", batch_size=7)
    assert isinstance(store, GraphStore)
    assert isinstance(store.driver, neo4j.Driver)
    assert (store.database, store.batch_size, store.name) == ("fromenv", 7, "neo4j")
    store.close()
    with pytest.raises(ConfigError):
        Neo4jStore.from_url("bolt://127.0.0.1:1", batch_size=0)
    with pytest.raises(ConfigError):  # the driver refuses routing context on bolt://
        Neo4jStore.from_url("bolt://127.0.0.1:1?policy=eu")


# ============================================================================ Arrow -> parameters
def test_node_rows_are_exact() -> None:
    t = pa.table(
        {
            "id": ["a", "b"],
            "f": [0.1 + 0.2, float("nan")],
            "i": [2**62, None],
            "ts": pa.array([dt.datetime(2011, 12, 9, 12, 50, 0, 123456), None], pa.timestamp("us")),
        }
    )
    rows = node_rows(t)
    assert rows[0] == {
        "id": "a",
        "f": 0.1 + 0.2,
        "i": 2**62,
        "ts": dt.datetime(2011, 12, 9, 12, 50, 0, 123456),
    }
    assert rows[0]["f"].hex() == (0.1 + 0.2).hex()
    assert math.isnan(rows[1]["f"]) and rows[1]["i"] is None and rows[1]["ts"] is None


def test_rel_rows_nest_properties() -> None:
    t = pa.table({"src": ["a", "b"], "dst": ["c", "d"], "w": [1 / 3, None], "role": [None, "main"]})
    assert rel_rows(t) == [
        {"src": "a", "dst": "c", "props": {"w": 1 / 3, "role": None}},
        {"src": "b", "dst": "d", "props": {"w": None, "role": "main"}},
    ]
    bare = pa.table({"src": ["a"], "dst": ["b"]})
    assert rel_rows(bare) == [{"src": "a", "dst": "b", "props": {}}]
    chunked = pa.concat_tables([t.slice(0, 1), t.slice(1, 1)])
    assert rel_rows(chunked) == rel_rows(t)


def test_batches() -> None:
    t = pa.table({"x": list(range(7))})
    got = [b.column("x").to_pylist() for b in batches(t, 3)]
    assert got == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(batches(t.slice(0, 0), 3)) == []


# ============================================================================ load through the stub
def test_replace_is_one_transaction_with_exact_batches(stub_store: Any) -> None:
    store, stub = stub_store(_loading_handler(), batch_size=2)
    steps: list[tuple[str, int, int]] = []
    store.replace(_data(), progress=lambda *a: steps.append(a))

    names = stub.names()
    begin = names.index("BEGIN")
    assert names.count("BEGIN") == 1 and names.count("COMMIT") == 1 and "ROLLBACK" not in names
    assert names[-1] == "COMMIT"
    runs = stub.runs()
    schema = [q for q, _ in runs[: names[:begin].count("RUN")]]
    assert set(schema) == {*cy.CONSTRAINTS.values(), cy.PRODUCT_TITLE_INDEX, cy.CATEGORY_NAME_INDEX}
    in_tx = runs[len(schema) :]
    # the old graph is deleted inside the same transaction, before anything is created
    deletes = [q for q, _ in in_tx[: len(cy.DELETE_NODES) + 1]]
    assert deletes == [*cy.DELETE_NODES.values(), cy.DELETE_META]
    # batches of at most 2 rows; every product row exactly once, floats bit-exact
    product_batches = [p["rows"] for q, p in in_tx if q == cy.CREATE_NODES["Product"]]
    assert [len(b) for b in product_batches] == [2, 1]
    sent = {r["product_id"]: r for b in product_batches for r in b}
    assert sent["p1"]["price"].hex() == (0.1 + 0.2).hex() and sent["p2"]["price"] == 1e-300
    assert sent["p2"]["stock"] is None and sent["p2"]["brand"] is None and sent["p1"]["title"] == "帐篷 Tent"
    comp = [r for q, p in in_tx if q == cy.CREATE_RELS["COMPLEMENT"] for r in p["rows"]]
    assert [(r["src"], r["dst"]) for r in comp] == [("p1", "p2"), ("p1", "p3")]
    assert comp[0]["props"]["score"] == 0.7000000000000001 and comp[1]["props"]["score"] == 1 / 3
    assert comp[1]["props"]["confidence"] is None
    assert set(comp[0]["props"]) == set(RELATIONS.names) - {"src", "dst", "kind", "evidence"} | {
        "evidence_id"
    }
    # the evidence goes into an Evidence node each, keyed by the relationship's evidence_id
    evidence = {r["evidence_id"]: r for q, p in in_tx if q == cy.CREATE_NODES["Evidence"] for r in p["rows"]}
    assert evidence[comp[0]["props"]["evidence_id"]]["evidence"] == '{"n_ab": 12}'
    relations = [r for q, p in in_tx if q in {cy.CREATE_RELS[t] for t in cy.RELATED} for r in p["rows"]]
    assert sorted(evidence) == sorted(r["props"]["evidence_id"] for r in relations)  # one each
    meta = [p for q, p in in_tx if q == cy.CREATE_META]
    assert len(meta) == 1 and json.loads(meta[0]["json"]) == {"source": "unit", "n": 3}
    # empty tables send no statement at all
    assert not [q for q, _ in in_tx if q == cy.CREATE_RELS["CO_VIEWED"]]
    assert steps[0] == ("Product", 0, 18) and steps[-1] == ("switch", 1, 1)  # 6 labels + 12 types


def test_lost_edge_rolls_back(stub_store: Any) -> None:
    store, stub = stub_store(_loading_handler(short_by={"COMPLEMENT": 1}))
    with pytest.raises(StoreError, match="COMPLEMENT: rows 1..2 created 1 of 2"):
        store.replace(_data())
    names = stub.names()
    assert "COMMIT" not in names and names[-1] == "ROLLBACK"


def test_server_failure_mid_load_rolls_back(stub_store: Any) -> None:
    def handler(query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        if query == cy.CREATE_RELS["IN_CATEGORY"]:
            raise Failure("Neo.TransientError.General.OutOfMemoryError", "transaction memory limit")
        return _loading_handler()(query, params)

    store, stub = stub_store(handler)
    with pytest.raises(StoreError, match="OutOfMemoryError") as info:
        store.replace(_data())
    assert isinstance(info.value.__cause__, neo4j.exceptions.Neo4jError)
    assert "COMMIT" not in stub.names()


def test_interrupted_load_rolls_back(stub_store: Any) -> None:
    store, stub = stub_store(_loading_handler())

    def interrupt(step: str, done: int, total: int) -> None:
        if step == "COMPLEMENT":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.replace(_data(), progress=interrupt)
    assert "COMMIT" not in stub.names() and stub.names()[-1] == "ROLLBACK"


# ============================================================================ reads through the stub
def test_related_maps_rows_exactly(stub_store: Any) -> None:
    row = {
        "product_id": "p2",
        "title": "Sleeping bag",
        "category": "bags",
        "category_path": "outdoor > bags",
        "brand": None,
        "price": 1e-300,
        "stock": None,
        "sales_role": "hero",
        "product_type": "lamps",
        "score": 0.7000000000000001,
        "n_ab": 12,
        "lift": 2.5,
        "confidence": 0.3,
        "co_view": 0,
        "similarity": None,
        "category_relation": "sibling",
        "price_ratio": 3.3333333333333335,
        "evidence": '{"n_ab": 12, "why": "买了又买"}',
    }
    seen: list[tuple[str, dict[str, Any]]] = []

    def handler(query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        seen.append((query, params))
        return [row] if query == cy.RELATED["COMPLEMENT"] else []

    store, stub = stub_store(handler)
    got = store.related("p1", "complement", k=5)
    assert seen == [(cy.RELATED["COMPLEMENT"], {"product_id": "p1", "k": 5})]
    assert list(got[0]) == [*PRODUCT_FIELDS, *RELATED_FIELDS]
    assert got[0]["kind"] == "complement" and got[0]["evidence"] == {"n_ab": 12, "why": "买了又买"}
    assert got[0]["score"].hex() == (0.7000000000000001).hex() and got[0]["price"] == 1e-300
    begin = [f for n, f in stub.log if n == "BEGIN"]
    assert begin and all(f[0].get("mode") == "r" for f in begin)


def test_related_unknown_product_and_empty(stub_store: Any) -> None:
    def handler(query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        if query == cy.PRODUCT_EXISTS:
            return [{"found": params["product_id"] == "lonely"}]
        return []

    store, _ = stub_store(handler)
    assert store.related("lonely", "upsell") == []
    with pytest.raises(ProductNotFound, match="'nope'"):
        store.related("nope", "upsell")
    with pytest.raises(ProductNotFound):
        store.product("nope")


def test_stats_and_product(stub_store: Any) -> None:
    def handler(query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        if query == cy.STATS:
            return [
                {"what": "node", "name": "Product", "count": 3},
                {"what": "rel", "name": "COMPLEMENT", "count": 2},
            ]
        if query == cy.META:
            return [{"json": '{"source": "unit"}'}]
        if query == cy.PRODUCT:
            return [{f: (params["product_id"] if f == "product_id" else None) for f in PRODUCT_FIELDS}]
        return []

    store, _ = stub_store(handler)
    stats = store.stats()
    assert stats["nodes"] == {
        "Product": 3,
        "Category": 0,
        "Brand": 0,
        "Attribute": 0,
        "Scene": 0,
        "Evidence": 0,
    }
    assert stats["relationships"]["COMPLEMENT"] == 2 and set(stats["relationships"]) == set(cy.REL_ENDPOINTS)
    assert stats["meta"] == {"source": "unit"}
    assert store.product("p9") == {**dict.fromkeys(PRODUCT_FIELDS), "product_id": "p9"}


def test_query_is_read_mode_with_time_limit(stub_store: Any) -> None:
    store, stub = stub_store(lambda q, p: [{"n": p["x"] + 1, "s": "ok"}])
    store.query_timeout_s = 2.5
    assert store.query("RETURN $x + 1 AS n, 'ok' AS s", {"x": 41}) == [{"n": 42, "s": "ok"}]
    begin = [f[0] for n, f in stub.log if n == "BEGIN"]
    assert begin[-1]["mode"] == "r" and begin[-1]["tx_timeout"] == 2500


@pytest.mark.parametrize(
    ("code", "expected", "status"),
    [
        ("Neo.ClientError.Statement.AccessMode", WriteRefused, 403),
        ("Neo.ClientError.Statement.SyntaxError", CypherError, 400),
        ("Neo.ClientError.Statement.ParameterMissing", CypherError, 400),
        ("Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration", CypherError, 400),
        ("Neo.ClientError.Database.DatabaseNotFound", StoreUnavailable, 503),
        ("Neo.DatabaseError.General.UnknownError", StoreError, 500),
    ],
)
def test_query_errors_are_translated(stub_store: Any, code: str, expected: type, status: int) -> None:
    def handler(query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        raise Failure(code, "nope")

    store, _ = stub_store(handler)
    with pytest.raises(expected) as info:
        store.query("CREATE (n:X)")
    assert type(info.value) is expected and info.value.status == status
    assert isinstance(info.value.__cause__, neo4j.exceptions.Neo4jError)


def test_syntax_error_in_own_statement_is_store_error(stub_store: Any) -> None:
    """A bad statement of tiein's own is a bug (500), not the analyst's 400."""

    def handler(query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        raise Failure("Neo.ClientError.Statement.SyntaxError", "bad")

    store, _ = stub_store(handler)
    with pytest.raises(StoreError) as info:
        store.stats()
    assert type(info.value) is StoreError


def test_bad_credentials_are_store_unavailable(stub_store: Any) -> None:
    store, _ = stub_store(lambda q, p: [], logon_failure="Neo.ClientError.Security.Unauthorized")
    with pytest.raises(StoreUnavailable, match="credentials") as info:
        store.query("RETURN 1")
    assert isinstance(info.value.__cause__, neo4j.exceptions.AuthError)


def _warning(description: str) -> dict[str, Any]:
    return {
        "code": "Neo.ClientNotification.Statement.UnknownLabelWarning",
        "title": "The provided label is not in the database.",
        "description": description,
        "severity": "WARNING",
        "category": "UNRECOGNIZED",
    }


@pytest.mark.parametrize(
    ("description", "error"),
    [
        # Neo4j 5 notification text (pre-GQL servers)
        (
            "One of the labels in your query is not available in the database, make sure you didn't "
            "misspell it or that the label is available when you run this statement in your application "
            "(the missing label name is: Prodcut)",
            "Prodcut",
        ),
        # GQL status description (01N51)
        (
            "warn: relationship type does not exist. The relationship type `COMPLEMENTS` does not exist "
            "in database `neo4j`. Verify that the spelling is correct.",
            "COMPLEMENTS",
        ),
        # a schema type without data yet is not a mistake
        (
            "One of the relationship types in your query is not available in the database, make sure you "
            "didn't misspell it or that the label is available when you run this statement in your "
            "application (the missing relationship type is: CO_VIEWED)",
            None,
        ),
        ("warn: label does not exist. The label `Scene` does not exist in database `neo4j`.", None),
    ],
)
def test_unknown_label_is_a_cypher_error(stub_store: Any, description: str, error: str | None) -> None:
    """Neo4j only warns about an unknown label; the contract (and the embedded store) says error."""
    store, _ = stub_store(lambda q, p: [], notifications=[_warning(description)])
    if error is None:
        assert store.query("MATCH (n) RETURN n") == []
    else:
        with pytest.raises(CypherError, match=f"'{error}'"):
            store.query("MATCH (n) RETURN n")


# ============================================================================ docker/ (no Docker engine here)
DOCKER = Path(__file__).resolve().parents[1] / "docker"


def test_compose_file_wires_neo4j_and_the_app() -> None:
    import yaml

    compose = yaml.safe_load((DOCKER / "compose.yml").read_text(encoding="utf-8"))
    neo, build, app = (compose["services"][name] for name in ("neo4j", "build", "app"))
    assert neo["image"].startswith("neo4j:5") and "community" in neo["image"]
    check = " ".join(neo["healthcheck"]["test"])
    assert neo["healthcheck"]["test"][0] == "CMD-SHELL" and "cypher-shell" in check and '"RETURN 1"' in check
    # the healthcheck's password variable is set in the container, and is not a NEO4J_* setting
    assert "$${TIEIN_NEO4J_PASSWORD}" in check and "TIEIN_NEO4J_PASSWORD" in neo["environment"]
    # one build after Neo4j is healthy, then the API once the build succeeded
    assert build["depends_on"]["neo4j"]["condition"] == "service_healthy"
    assert app["depends_on"]["neo4j"]["condition"] == "service_healthy"
    assert app["depends_on"]["build"]["condition"] == "service_completed_successfully"
    # build, app and server agree on the password default
    default = "${TIEIN_NEO4J_PASSWORD:-tiein-secret}"
    assert neo["environment"]["NEO4J_AUTH"] == f"neo4j/{default}"
    for svc in (build, app):
        assert (
            svc["environment"]["TIEIN_NEO4J_PASSWORD"] == default
            and svc["environment"]["TIEIN_NEO4J_USER"] == "neo4j"
        )
    script = " ".join(build["command"])
    assert "tiein build --dataset online_retail --store bolt://neo4j:7687" in script
    assert script.index("tiein build") < script.index("&& tiein stats")
    serve = " ".join(app["command"])
    assert (
        serve.startswith("tiein serve --host 0.0.0.0")
        and app["environment"]["TIEIN_STORE"] == "bolt://neo4j:7687"
    )
    # a non-loopback bind needs a token; the port is published on the host's loopback only
    assert app["environment"]["TIEIN_API_TOKEN"] and all(p.startswith("127.0.0.1:") for p in app["ports"])
    assert "/v1/health" in " ".join(app["healthcheck"]["test"])
    # the shared data, read-only, from the folder next to the repository
    data = [v for v in build["volumes"] if v.endswith(":/data:ro")]
    assert len(data) == 1
    host = data[0].split(":-", 1)[1].split("}", 1)[0]
    assert (DOCKER / host).resolve() == (DOCKER.parent.parent / "shared" / "data").resolve()
    assert build["environment"]["TIEIN_DATA"] == "/data"
    assert (DOCKER / build["build"]["context"] / build["build"]["dockerfile"]).resolve() == (
        DOCKER / "Dockerfile"
    ).resolve()
    assert app["image"] == build["image"]
    assert set(compose["volumes"]) >= {v.split(":")[0] for v in neo["volumes"]}


def _interpolate(text: str) -> str:
    """What ``docker compose`` does to the file before validating it, with no variables set:
    ``${VAR:-default}`` / ``${VAR-default}`` become the default, ``${VAR}`` nothing, ``$$`` ``$``."""
    import re

    text = text.replace("$$", "\0")
    text = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}", lambda m: m.group(1) or "", text)
    return text.replace("\0", "$")


def test_compose_file_is_valid_compose() -> None:
    """docker/compose.yml against the Compose specification (compose-spec, a full parser of it):
    no Docker engine runs here, so this is what `docker compose config` would check."""
    from compose_spec import PyCompose

    text = _interpolate((DOCKER / "compose.yml").read_text(encoding="utf-8"))
    compose = PyCompose.from_yaml(text)
    assert sorted(compose.service_names()) == ["app", "build", "neo4j"]
    services = compose.to_dict()["services"]
    assert services["neo4j"]["ports"] and services["app"]["healthcheck"]["interval"]
    # the validator is strict: a misspelt key or a wrong condition is refused
    for good, bad in (
        ("healthcheck:", "healthchek:"),
        ("service_healthy", "service_happy"),
        ("interval: 5s", "interval: soon"),
    ):
        assert good in text
        with pytest.raises(ValueError):
            PyCompose.from_yaml(text.replace(good, bad, 1))


def test_dockerfile_installs_cpu_torch_and_every_package() -> None:
    import tomllib

    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    torch = next(ln for ln in lines if "torch==" in ln)
    assert "torch==2.13.0" in torch and "--index-url https://download.pytorch.org/whl/cpu" in torch
    install = next(i for i, ln in enumerate(lines) if "pip install '.[" in ln)
    extras = lines[install].split("'.[", 1)[1].split("]'", 1)[0].split(",")
    assert {"embeddings", "api"} <= set(extras), "the image needs the encoder and the HTTP API"
    assert lines.index(torch) < install
    root = DOCKER.parent
    copied = {ln.split()[1] for ln in lines if ln.startswith("COPY ")}
    for src in copied:
        assert (root / src).exists(), src
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= copied, "a package of pyproject.toml is not copied into the image"
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    assert all(f"!{src}" in ignore or f"!{src}/**" in ignore for src in copied)


def test_docstring_examples() -> None:
    import doctest

    import tiein.graph.neo4j_support

    result = doctest.testmod(tiein.graph.neo4j_support)
    assert result.attempted >= 1 and result.failed == 0
