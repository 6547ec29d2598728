"""HOME/shop.toml: the shop's bundle rules, currency and time zone, read by the CLI, the API and
export (options and parameters still win); "why no bundle" in the CLI's bundle table and in the
export summary."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tiein.cli import cli
from tiein.errors import ConfigError
from tiein.pipeline import BuildOptions, build
from tiein.shop_config import ShopConfig, load_shop_config, parse_shop_config

CAMPING = Path(__file__).parent / "fixtures" / "camping"

SHOP = """\
currency = "$"
timezone = "UTC"

[bundle]
size = 4
discount = 0.2
charm_digit = 9
"""


@pytest.fixture(scope="module")
def shop_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("shop-home")
    build(
        BuildOptions(
            catalog=CAMPING / "catalog.csv",
            orders=CAMPING / "orders.csv",
            home=home,
            threads=1,
            scenes=CAMPING / "scenes.yaml",
            embeddings=False,
        )
    )
    return home


@pytest.fixture
def shop(shop_home: Path) -> Iterator[Path]:
    (shop_home / "shop.toml").write_text(SHOP, encoding="utf-8")
    yield shop_home
    (shop_home / "shop.toml").unlink(missing_ok=True)


def run(home: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    result = CliRunner().invoke(cli, [*args, "--home", str(home)], env=env)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


# ----------------------------------------------------------------------------- the file
def test_no_file_is_an_empty_config(tmp_path: Path) -> None:
    assert load_shop_config(tmp_path) == ShopConfig()
    assert load_shop_config(None) == ShopConfig()


def test_file_is_read_and_reread_when_it_changes(tmp_path: Path) -> None:
    f = tmp_path / "shop.toml"
    f.write_text(SHOP, encoding="utf-8")
    got = load_shop_config(tmp_path)
    assert (got.currency, got.timezone, got.path) == ("$", "UTC", f)
    assert got.bundle == {"size": 4, "discount": 0.2, "charm_digit": 9}
    f.write_text('currency = "€"\n[bundle]\nmin_price_ratio = 0.5\n', encoding="utf-8")
    got = load_shop_config(tmp_path)
    assert (got.currency, got.timezone, got.bundle) == ("€", None, {"min_price_ratio": 0.5})


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("currency = \n", ("not valid TOML",)),
        ('colour = "red"\n', ("unknown key", "colour", "currency, timezone, bundle")),
        ("[bundle]\nsize = 9\n", ("bundle.size", ">= 2", "<= 6", "9")),
        ("[bundle]\nsize = 3.5\n", ("bundle.size", "whole number")),
        ("[bundle]\ndiscount = 1.0\n", ("bundle.discount", "< 1")),
        ('[bundle]\ndiscount = "10%"\n', ("bundle.discount", "must be a number")),
        ("[bundle]\nmargin = 0.3\n", ("unknown bundle key", "margin")),
        ("[bundle]\nmin_price_ratio = 0.9\nmax_price_ratio = 0.5\n", ("min_price_ratio 0.9 is above",)),
        ('timezone = "Mars/Olympus"\n', ("unknown time zone", "Mars/Olympus", "timezone")),
        ('currency = "\\u0007"\n', ("currency",)),
        ('bundle = "cheap"\n', ("bundle must be a table",)),
    ],
)
def test_bad_file_names_file_key_and_why(tmp_path: Path, text: str, words: tuple[str, ...]) -> None:
    f = tmp_path / "shop.toml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        parse_shop_config(f)
    assert str(f) in str(exc.value)
    for w in words:
        assert w in str(exc.value)


def test_bad_file_is_a_plain_cli_error(shop_home: Path) -> None:
    (shop_home / "shop.toml").write_text("[bundle]\nsize = 1\n", encoding="utf-8")
    try:
        r = subprocess.run(
            [str(Path(sys.executable).with_name("tiein")), "bundle", "tent", "--home", str(shop_home)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        (shop_home / "shop.toml").unlink()
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("error: ") and "shop.toml: bundle.size must be >= 2" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- CLI
def test_cli_bundle_follows_the_shop_and_options_win(shop: Path) -> None:
    got = json.loads(run(shop, "bundle", "tent", "--json").output)
    assert got["discount"] == 0.2 and len(got["items"]) == 3  # size 4: anchor + 3
    assert str(round(got["suggested_price"]))[-1] == "9"  # charm digit 9
    assert "$" in got["pitch"]["en"] and "¥" not in got["pitch"]["zh"]
    got = json.loads(run(shop, "bundle", "tent", "--json", "--discount", "0.1", "--size", "3").output)
    assert got["discount"] == 0.1 and len(got["items"]) == 2
    # the environment's currency wins over the file's
    got = json.loads(run(shop, "bundle", "tent", "--json", env={"TIEIN_CURRENCY": "€"}).output)
    assert "€" in got["pitch"]["en"] and "$" not in got["pitch"]["en"]


def test_cli_without_a_file_keeps_the_defaults(shop_home: Path) -> None:
    got = json.loads(run(shop_home, "bundle", "tent", "--json").output)
    assert got["discount"] == 0.1 and len(got["items"]) == 2 and "¥" in got["pitch"]["zh"]


def test_cli_bundle_says_which_candidates_were_left_out(shop_home: Path) -> None:
    out = run(shop_home, "bundle", "tent", "--min-price-ratio", "0.01", "--max-price-ratio", "0.02").output
    assert "no bundle:" in out and "无法组合套装" in out
    left = next(line for line in out.splitlines() if "left out:" in line)
    assert "outside the price band" in left
    assert any(
        line.strip().startswith("未选用：") and "价格不在主商品价格区间内" in line
        for line in out.splitlines()
    )


def test_cli_addons_use_the_shop_currency(shop: Path) -> None:
    got = json.loads(run(shop, "addons", "tent", "--json", "--threshold", "2000").output)
    texts = json.dumps(got, ensure_ascii=False)
    assert "$" in texts and "¥" not in texts


def test_export_takes_the_shop_size_and_reports_why_no_bundle(shop: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundles.csv"
    r = run(shop, "export", "bundles", "--format", "csv", "--out", str(out), "--layout", "bundle", "--quiet")
    header = out.read_text(encoding="utf-8").splitlines()[0]
    assert "item3_product_id" in header and "item4_product_id" not in header  # size 4 from shop.toml
    assert "no bundle for " in r.output
    lines = r.output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("no bundle for "))
    reasons = lines[start + 1 :]
    assert reasons and all("[" in line and "/" in line for line in reasons)
    js = json.loads(
        run(
            shop, "export", "bundles", "--format", "jsonl", "--out", str(tmp_path / "b.jsonl"), "--json"
        ).output
    )
    counted = sum(js["no_bundle"].values())
    rows = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text(encoding="utf-8").splitlines()]
    assert counted == sum(1 for b in rows if b["reason"]) > 0
    assert js["options"]["size"] == 4 and js["options"]["rules"]["discount"] == 0.2


# ----------------------------------------------------------------------------- API
def test_api_bundle_follows_the_shop_and_keeps_the_last_good_file(shop: Path) -> None:
    from fastapi.testclient import TestClient

    from tiein.api import Settings, create_app

    with TestClient(create_app(Settings(home=shop, snapshot=False)), raise_server_exceptions=False) as c:
        got = c.get("/v1/products/tent/bundle").json()
        assert got["discount"] == 0.2 and len(got["items"]) == 3 and "$" in got["pitch"]["en"]
        got = c.get("/v1/products/tent/bundle", params={"discount": 0.1, "size": 3}).json()
        assert got["discount"] == 0.1 and len(got["items"]) == 2
        (shop / "shop.toml").write_text(SHOP.replace("discount = 0.2", "discount = 0.3"), encoding="utf-8")
        assert c.get("/v1/products/tent/bundle").json()["discount"] == 0.3  # an edit is picked up
        (shop / "shop.toml").write_text("[bundle]\ndiscount = 7\n", encoding="utf-8")
        r = c.get("/v1/products/tent/bundle")
        assert r.status_code == 200 and r.json()["discount"] == 0.3  # a broken edit: the last good one
        r = c.post("/v1/cart/addons", json={"cart": ["tent"], "threshold": 2000})
        assert r.status_code == 200
    with pytest.raises(ConfigError, match="bundle.discount"):
        create_app(Settings(home=shop, snapshot=False))  # a bad file stops the server at start


def test_api_events_read_zone_less_times_in_the_shops_zone(shop: Path) -> None:
    from fastapi.testclient import TestClient

    from tiein.api import Settings, create_app
    from tiein.feedback import read_log

    ev = {
        "ts": "2024-03-01 10:00:00",
        "user_id": "u1",
        "anchor_id": "tent",
        "item_id": "chair",
        "kind": "complement",
        "event": "impression",
    }
    with TestClient(create_app(Settings(home=shop, snapshot=False)), raise_server_exceptions=False) as c:
        assert c.post("/v1/events", json={"events": [{**ev, "event_id": "a"}]}).status_code == 200  # UTC
        (shop / "shop.toml").write_text('timezone = "Asia/Tokyo"\n', encoding="utf-8")
        assert c.post("/v1/events", json={"events": [{**ev, "event_id": "b"}]}).status_code == 200  # +9
        body = {"events": [{**ev, "event_id": "c"}], "timezone": "Europe/Berlin"}  # +1 in March
        assert c.post("/v1/events", json=body).status_code == 200
        r = c.post("/v1/events", json={"events": [{**ev, "event_id": "d"}], "timezone": "Nowhere/City"})
        assert r.status_code == 422 and "Nowhere/City" in r.json()["error"]["message"]
    times = {e["event_id"]: e["ts"] for e in read_log(shop).to_pylist()}
    assert times == {
        "a": datetime(2024, 3, 1, 10),
        "b": datetime(2024, 3, 1, 1),
        "c": datetime(2024, 3, 1, 9),
    }


def test_cli_ingest_reads_the_shops_zone(shop: Path, tmp_path: Path) -> None:
    f = tmp_path / "events.csv"
    f.write_text(
        "event_id,ts,user_id,anchor_id,item_id,kind,event\nz1,2024-03-01 10:00:00,u1,tent,chair,complement,曝光\n",
        encoding="utf-8",
    )
    home = tmp_path / "ingest-home"
    home.mkdir()
    (home / "shop.toml").write_text('timezone = "America/New_York"\n', encoding="utf-8")
    r = run(home, "feedback", "ingest", str(f))
    assert "times without a zone read as America/New_York" in r.output
    from tiein.feedback import read_log

    assert read_log(home).to_pylist()[0]["ts"] == datetime(2024, 3, 1, 15)
