"""What the API refuses before an endpoint runs (tiein/api/guard.py) and what it never logs:
request bodies over the cap (413, before they are read), JSON nested too deep (400), the token of
the page login (``?token=`` → cookie + redirect; ``token=***`` in the access log)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tiein.api.guard import RedactSecrets, json_depth, redact

TOKEN = "s3cret-token-do-not-log"
BIG = 25 * 1024 * 1024


def test_a_25_mb_body_is_413_on_every_post_endpoint(client: Any) -> None:
    big = b'{"query": "RETURN 1", "params": {"x": "' + b"a" * BIG + b'"}}'
    for path in ("/v1/cypher", "/v1/events", "/v1/cart/addons"):
        r = client.post(path, content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413, (path, r.text[:200])
        assert (
            r.json()["error"]["code"] == "payload_too_large" and "1,048,576" in r.json()["error"]["message"]
        )


def test_a_chunked_body_is_cut_at_the_cap(client: Any) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"query": "RETURN 1", "params": {"x": "'
        for _ in range(40):
            yield b"a" * (64 * 1024)
        yield b'"}}'

    r = client.post("/v1/cypher", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_deeply_nested_json_is_400_not_a_traceback(client: Any) -> None:
    deep = '{"query": "RETURN 1", "params": {"x": ' + "[" * 10_000 + "]" * 10_000 + "}}"
    for path in ("/v1/cypher", "/v1/events", "/v1/cart/addons"):
        r = client.post(path, content=deep, headers={"content-type": "application/json"})
        assert r.status_code == 400, r.text[:200]
        assert "nested deeper" in r.json()["error"]["message"] and "Traceback" not in r.text
    ok = {"query": "RETURN $x AS x", "params": {"x": [[[1]]]}}
    assert client.post("/v1/cypher", json=ok).json()["rows"] == [[[[[1]]]]]


def test_json_depth_skips_strings() -> None:
    assert json_depth(b'{"a": "[[[[{{{{", "b": [{"c": "\\"]"}]}') == 3
    assert json_depth(b"") == 0 and json_depth(b"[" * 100, limit=10) == 11


def test_small_bodies_and_gets_pass(client: Any) -> None:
    r = client.post("/v1/cypher", json={"query": "MATCH (p:Product) RETURN count(p) AS n"})
    assert r.status_code == 200 and r.json()["rows"] == [[7]]
    assert client.get("/v1/products/tent").status_code == 200


# ----------------------------------------------------------------------------- token
def test_redaction() -> None:
    assert redact("/v1/products/tent/view?token=abc&x=1") == "/v1/products/tent/view?token=***&x=1"
    assert redact("/x?a=1&TOKEN=abc") == "/x?a=1&TOKEN=***" and redact("/x?api_key=k") == "/x?api_key=***"
    assert redact("/v1/products/token=1") == "/v1/products/token=1"  # a path, not a parameter
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "GET", f"/v1/products/tent/view?token={TOKEN}", "1.1", 303),
        None,
    )
    assert RedactSecrets().filter(record) and TOKEN not in record.getMessage()


def test_page_login_moves_the_token_to_a_cookie_and_never_logs_it(home: Path, tmp_path: Path) -> None:
    from test_api import serve

    log = tmp_path / "server.log"
    with serve("--home", str(home), "--log-level", "info", env={"TIEIN_API_TOKEN": TOKEN}, log=log) as url:
        with httpx.Client(base_url=url, timeout=30) as c:
            r = c.get("/v1/products/tent/view", params={"token": TOKEN, "lang": "zh"})
            assert r.status_code == 303 and r.headers["location"] == "/v1/products/tent/view?lang=zh"
            cookie = r.headers["set-cookie"]
            assert "tiein_token=" in cookie and "httponly" in cookie.lower()
            assert c.get(r.headers["location"]).status_code == 200  # the cookie now
            header = {"Authorization": f"Bearer {TOKEN}"}
            assert httpx.get(f"{url}/v1/products/tent/view", headers=header, timeout=30).status_code == 200
            assert httpx.get(f"{url}/v1/products/tent/view", timeout=30).status_code == 401
            httpx.get(f"{url}/v1/health?token={TOKEN}", timeout=30)
        time.sleep(0.5)
    text = log.read_text(encoding="utf-8", errors="replace")
    assert "/v1/products/tent/view" in text, text[-2000:]  # the access log is on
    assert TOKEN not in text and "token=***" in text


def test_settings_know_the_limits() -> None:
    from tiein.api import Settings
    from tiein.errors import ConfigError

    s = Settings.from_env({"TIEIN_API_MAX_BODY": "2048", "TIEIN_API_CYPHER_MEMORY": "1024"})
    assert s.max_body_bytes == 2048 and s.cypher_memory_mb == 1024
    with pytest.raises(ConfigError, match="cypher_memory_mb"):
        Settings(cypher_memory_mb=10)
    assert json.loads(json.dumps(s.to_env()))["TIEIN_API_MAX_BODY"] == "2048"
