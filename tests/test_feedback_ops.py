"""What ops read: the A/B report's verdict (p-value, significance, sample size needed), the
sample-ratio check, percentages, Chinese labels drawn with a real CJK font (not tofu), the daily
trend in the shop's time zone; and event ingest with ``--map``, Chinese event names and
``--timezone``."""

from __future__ import annotations

import json
import math
import os
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tiein.cli import cli
from tiein.errors import ConfigError, InputError
from tiein.feedback import ab_report, events_table, read_events, read_log, write_report
from tiein.feedback.ab import chi2_sf, needed_per_arm, normal_p, parse_split, srm_check
from tiein.feedback.fonts import SAMPLE, cjk_font, covers, font_rc
from tiein.loaders.events import DEFAULT_TIMEZONE, TIMEZONE_ENV, parse_map, shop_timezone

Z = 1.959963984540054


def arm(variant: str, users: int, buyers: int, day: str = "2024-03-01T12:00:00Z") -> list[dict[str, Any]]:
    """``users`` users of ``variant`` shown a→x once; the first ``buyers`` of them buy it."""
    ev = []
    for i in range(users):
        base = {
            "ts": day,
            "user_id": f"{variant}{i}",
            "anchor_id": "a",
            "item_id": "x",
            "kind": "complement",
            "experiment": "e",
            "variant": variant,
        }
        ev.append({**base, "event": "impression"})
        if i < buyers:
            ev.append({**base, "event": "purchase", "value": "100", "order_id": f"o-{variant}{i}"})
    return ev


def sd(p: float, n: int) -> float:
    """Sample standard deviation of n 0/1 values with mean p."""
    return math.sqrt(p * (1 - p) * n / (n - 1))


# ----------------------------------------------------------------------------- statistics
def test_p_values_match_scipy() -> None:
    from scipy import stats

    for z in (0.0, 0.5, 1.96, 3.3):
        assert normal_p(z) == pytest.approx(2 * stats.norm.sf(z), rel=1e-12)
    for df in (1, 2, 3, 5, 10):
        for x in (0.01, 0.5, 1.0, 3.84, 7.0, 20.0, 80.0):
            assert chi2_sf(x, df) == pytest.approx(stats.chi2.sf(x, df), rel=1e-9, abs=1e-300)


def test_sample_size_formula() -> None:
    # 2 % -> 2.5 %, alpha 0.05 two-sided, power 0.8: (1.96 + 0.8416)² (σa² + σb²) / Δ²
    za, zb = 1.959963984540054, 0.8416212335729143
    want = math.ceil((za + zb) ** 2 * (0.02 * 0.98 + 0.025 * 0.975) / 0.005**2)
    assert needed_per_arm(math.sqrt(0.02 * 0.98), math.sqrt(0.025 * 0.975), 0.005) == want
    assert needed_per_arm(0.1, 0.1, 0.0) is None
    assert needed_per_arm(0.1, 0.1, 0.01, alpha=0.01) > needed_per_arm(0.1, 0.1, 0.01)


def test_verdict_significant_with_p_value() -> None:
    rep = ab_report(events_table(arm("A", 1000, 20) + arm("B", 1000, 45)))
    (lift,) = [x for x in rep["lift"] if x["metric"] == "conversion"]
    pa_, pb = 0.02, 0.045
    sa, sb = sd(pa_, 1000) / math.sqrt(1000), sd(pb, 1000) / math.sqrt(1000)
    z = math.log(pb / pa_) / math.sqrt((sa / pa_) ** 2 + (sb / pb) ** 2)
    assert lift["p_value"] == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert lift["significant"] is True and lift["p_value"] < 0.01
    # consistent with the 95 % CI of the lift: significant at 0.05 <=> the CI excludes 0
    assert lift["low"] > 0
    (v,) = rep["verdict"]
    assert v["significant"] is True and v["metric"] == "conversion"
    assert "2.00% → 4.50%" in v["en"] and "significantly better at the 5% level" in v["en"]
    assert f"p = {lift['p_value']:.3f}" in v["en"]
    assert "转化率 2.00% → 4.50%" in v["zh"] and "显著更好" in v["zh"]


def test_verdict_not_significant_names_the_sample_size() -> None:
    rep = ab_report(events_table(arm("A", 300, 6) + arm("B", 300, 8)), alpha=0.05, power=0.8)
    (lift,) = [x for x in rep["lift"] if x["metric"] == "conversion"]
    assert lift["significant"] is False and lift["p_value"] > 0.05
    pa_, pb = 6 / 300, 8 / 300
    want = needed_per_arm(sd(pa_, 300), sd(pb, 300), pb - pa_)
    assert lift["needed_per_arm"] == want and want > 300
    (v,) = rep["verdict"]
    assert "not significant at the 5% level" in v["en"]
    assert f"about {want:,} users per arm (80% power)" in v["en"] and "the smaller arm has 300" in v["en"]
    assert "不显著" in v["zh"] and f"每组约需 {want:,} 位用户" in v["zh"]
    # the verdict can be about another metric and level
    rep = ab_report(events_table(arm("A", 300, 6) + arm("B", 300, 8)), metric="add_on_rate", alpha=0.1)
    assert rep["verdict"][0]["metric"] == "add_on_rate" and "10% level" in rep["verdict"][0]["en"]
    with pytest.raises(ConfigError, match="metric"):
        ab_report(events_table(arm("A", 3, 1)), metric="ctr")


def test_sample_ratio_mismatch() -> None:
    ev = events_table(arm("A", 1000, 20) + arm("B", 800, 16))
    srm = ab_report(ev)["srm"]
    assert srm["observed"] == {"A": 1000, "B": 800} and srm["expected"] == {"A": 900.0, "B": 900.0}
    assert srm["chi2"] == pytest.approx(2 * 100**2 / 900)
    assert srm["p_value"] == pytest.approx(math.erfc(math.sqrt(srm["chi2"] / 2)))
    assert srm["mismatch"] is True
    rep = ab_report(ev)
    assert "SRM" in rep["verdict"][0]["en"] and "不可信" in rep["verdict"][0]["zh"]
    # the same arms planned 55/45 are fine
    ok = ab_report(ev, split="55/45")["srm"]
    assert ok["mismatch"] is False and ok["expected"] == {"A": 990.0, "B": 810.0}
    assert parse_split("B=45,A=55", ["A", "B"]) == pytest.approx({"A": 0.55, "B": 0.45})
    assert srm_check({"A": 10, "B": 1}, {"A": 1.0, "B": 0.0})["mismatch"] is True
    for bad in ("50/30/20", "A=1,C=1", "x/y"):
        with pytest.raises(ConfigError, match="split"):
            parse_split(bad, ["A", "B"])


def test_daily_trend_in_the_shop_zone() -> None:
    # 20:00 UTC on 1 March is 2 March in Shanghai
    ev = events_table(arm("A", 10, 1, "2024-03-01T20:00:00Z") + arm("B", 10, 2, "2024-03-01T10:00:00Z"))
    daily = ab_report(ev, timezone="Asia/Shanghai")["daily"]
    assert [(d["day"], d["variant"], d["impressions"], d["purchases"]) for d in daily] == [
        ("2024-03-01", "B", 10, 2),
        ("2024-03-02", "A", 10, 1),
    ]
    assert daily[0]["conversion"] == pytest.approx(0.2)
    assert [d["day"] for d in ab_report(ev, timezone="UTC")["daily"]] == ["2024-03-01", "2024-03-01"]


# ----------------------------------------------------------------------------- fonts and files
def _need_cjk_font() -> tuple[str, str]:
    found = cjk_font()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("no CJK font: install fonts-noto-cjk (make setup / .ci/run do)")
        pytest.skip("no CJK font installed (apt-get install fonts-noto-cjk)")
    return found


def _render(text: str) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    with matplotlib.rc_context(font_rc()), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = plt.figure(figsize=(2, 0.6), dpi=100)
        fig.text(0.05, 0.3, text, fontsize=20)
        fig.canvas.draw()
        pixels = np.asarray(fig.canvas.buffer_rgba()).copy()  # type: ignore[attr-defined]
        plt.close(fig)
    return pixels, [str(w.message) for w in caught]


def test_a_cjk_font_is_found_and_draws_chinese_not_tofu() -> None:
    name, path = _need_cjk_font()
    assert covers(path, SAMPLE + "转化率对照组实验组样本比例")
    assert not covers(path, "\ue000")  # a private-use character has no glyph: .notdef
    glyphs, warned = _render("转化率")
    tofu, _ = _render("\ue000\ue000\ue000")  # three .notdef boxes
    other, _ = _render("客单价")
    assert not [w for w in warned if "missing from font" in w], warned
    assert (glyphs != tofu).any() and (glyphs != other).any()
    assert (glyphs[..., :3] < 128).any()  # something dark was drawn


def test_report_files_have_chinese_labels_and_percentages(tmp_path: Path) -> None:
    _need_cjk_font()
    rep = ab_report(events_table(arm("A", 400, 10) + arm("B", 400, 16)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = write_report(rep, tmp_path, lang="both")
    assert not [w for w in caught if "missing from font" in str(w.message)]  # no tofu in the PNG
    assert rep["chart_lang"] == "both" and rep["chart_font"]
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = paths["html"].read_text(encoding="utf-8")
    for part in (
        "转化率 conversion",
        "2.50%",
        "4.00%",
        "p 值 p-value",
        "样本比例正常",
        "每日转化率",
        rep["verdict"][0]["zh"],
    ):
        assert part in html, part
    assert "0.025" not in html
    zh = write_report(rep, tmp_path / "zh", lang="zh")["html"].read_text(encoding="utf-8")
    assert "转化率" in zh and "conversion" not in zh.split("<h2>")[1]
    saved = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert saved["verdict"][0]["p_value"] == rep["verdict"][0]["p_value"] and saved["srm"]["df"] == 1
    with pytest.raises(ConfigError, match="language"):
        write_report(rep, tmp_path, lang="fr")


def test_report_cli_prints_the_verdict(tmp_path: Path) -> None:
    home = tmp_path / "home"
    from tiein.feedback import ingest

    ingest(home, events_table(arm("A", 400, 10) + arm("B", 400, 16)))
    r = CliRunner().invoke(
        cli, ["report", "--home", str(home), "--out", str(tmp_path / "out"), "--split", "50/50"]
    )
    assert r.exit_code == 0, r.output
    out = r.output
    assert "conversion 2.50% [" in out and "conversion 4.00% [" in out
    assert "lift B vs A conversion   +60.0%" in out and "p = 0." in out
    assert "sample ratio OK" in out and "样本比例正常" in out
    assert "B vs A: conversion 2.50% → 4.00% (+60.0%)" in out and "B 对比 A：转化率" in out
    r = CliRunner().invoke(
        cli, ["report", "--home", str(home), "--out", str(tmp_path / "o2"), "--lang", "en", "--alpha", "0.5"]
    )
    assert r.exit_code == 0 and "对比" not in r.output and "50% level" in r.output


# ----------------------------------------------------------------------------- ingest
ZH_CSV = """时间,会员ID,主商品,推荐商品,关系,行为,金额,订单号
2024-03-01 10:00:00,u1,a,x,complement,曝光,,
2024-03-01 10:00:05,u1,a,x,complement,点击,,
2024-03-01 10:00:09,u1,a,x,complement,加购,,
2024-03-01 10:01:00,u1,a,x,complement,下单,30,o1
2024-03-01T02:02:00Z,u1,a,x,complement,购买,30,o1
2024-03-01T10:03:00+08:00,u1,a,x,complement,Add-To-Cart,,
"""
ZH_MAP = [
    "ts=时间",
    "user_id=会员ID",
    "anchor_id=主商品",
    "item_id=推荐商品",
    "kind=关系",
    "event=行为",
    "value=金额",
    "order_id=订单号",
]


def test_read_events_with_map_chinese_names_and_zone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "埋点.csv"
    f.write_text(ZH_CSV, encoding="utf-8")
    monkeypatch.delenv(TIMEZONE_ENV, raising=False)
    t = read_events(f, columns=parse_map(ZH_MAP)).to_pylist()
    assert [r["event"] for r in t] == [
        "impression",
        "click",
        "add_to_cart",
        "purchase",
        "purchase",
        "add_to_cart",
    ]
    # zone-less times are Shanghai time (UTC+8) by default; times with a zone keep theirs
    assert DEFAULT_TIMEZONE == "Asia/Shanghai"
    assert [r["ts"] for r in t] == [
        datetime(2024, 3, 1, 2, 0, 0),
        datetime(2024, 3, 1, 2, 0, 5),
        datetime(2024, 3, 1, 2, 0, 9),
        datetime(2024, 3, 1, 2, 1, 0),
        datetime(2024, 3, 1, 2, 2, 0),
        datetime(2024, 3, 1, 2, 3, 0),
    ]
    assert (t[3]["user_id"], t[3]["value"], t[3]["order_id"]) == ("u1", 30.0, "o1")
    utc = read_events(f, columns=parse_map(ZH_MAP), timezone="UTC").to_pylist()
    assert [r["ts"].hour for r in utc] == [10, 10, 10, 10, 2, 2]
    monkeypatch.setenv(TIMEZONE_ENV, "Europe/Berlin")  # UTC+1 in March
    assert shop_timezone() == "Europe/Berlin"
    assert read_events(f, columns=parse_map(ZH_MAP)).to_pylist()[0]["ts"] == datetime(2024, 3, 1, 9, 0)
    monkeypatch.setenv(TIMEZONE_ENV, "Mars/Olympus")
    with pytest.raises(ConfigError, match="TIEIN_TIMEZONE"):
        shop_timezone()
    with pytest.raises(ConfigError, match="unknown field 'colour'"):
        parse_map(["colour=颜色"])
    with pytest.raises(ConfigError, match="FIELD=COLUMN"):
        parse_map(["user_id"])
    with pytest.raises(InputError, match="'会员' .*missing") as exc:
        read_events(f, columns={**parse_map(ZH_MAP), "user_id": "会员"}, timezone="UTC")
    assert "会员ID" in str(exc.value)
    with pytest.raises(InputError, match="--map user_id=COLUMN"):
        read_events(f, columns={k: v for k, v in parse_map(ZH_MAP).items() if k != "user_id"}, timezone="UTC")


def test_unknown_event_lists_the_chinese_names(tmp_path: Path) -> None:
    f = tmp_path / "e.csv"
    f.write_text(
        "time,user_id,anchor_id,item_id,kind,event\n2024-01-01,u,a,b,complement,收藏\n", encoding="utf-8"
    )
    with pytest.raises(
        InputError, match="unknown event '收藏'.*impression \\(曝光/展现\\), click \\(点击\\)"
    ):
        read_events(f)


def test_ingest_cli_map_and_timezone(tmp_path: Path) -> None:
    f = tmp_path / "埋点.csv"
    f.write_text(ZH_CSV, encoding="utf-8")
    home = tmp_path / "home"
    args = ["feedback", "ingest", str(f), "--home", str(home)]
    for m in ZH_MAP:
        args += ["--map", m]
    r = CliRunner().invoke(cli, [*args, "--timezone", "America/New_York"])
    assert r.exit_code == 0, r.output
    assert "6 of 6 events added" in r.output and "times without a zone read as America/New_York" in r.output
    times = [r["ts"] for r in read_log(home).to_pylist()]  # ordered by time
    assert times[:2] == [datetime(2024, 3, 1, 2, 2), datetime(2024, 3, 1, 2, 3)]  # had a zone
    assert times[2] == datetime(2024, 3, 1, 15, 0)  # 10:00 in New York (EST) = 15:00 UTC
    r = CliRunner().invoke(cli, [*args, "--timezone", "Nowhere/Town"])
    assert r.exit_code != 0 and "unknown time zone" in str(r.exception)
    r = CliRunner().invoke(cli, ["feedback", "ingest", "--help"])
    assert "--map FIELD=COLUMN" in r.output and "--timezone ZONE" in r.output
