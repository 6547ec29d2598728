"""Progress and help (issue 13, item 6) and display-width tables (item 3): full command summaries,
the ``--map`` fields in ``build --help``, ``tiein search``, progress bars and spinners drawn only on
a terminal, sensible rates, no third-party bars, Chinese titles that line up."""

from __future__ import annotations

import io
import json
import re
import sys
import time
import types
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tiein.cli import cli
from tiein.cli.base import (
    QUIET_LIBRARIES,
    TqdmProgress,
    display_width,
    fit,
    pad,
    spinner,
    summary_line,
    table_lines,
)

CAMPING = Path(__file__).parent / "fixtures" / "camping"


def invoke(*args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(cli, list(args), terminal_width=100, env=env)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def _commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, cmd in group.commands.items():
        yield prefix + name, cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, prefix + name + " ")


# ----------------------------------------------------------------------------- help
def test_every_command_summary_is_whole() -> None:
    """`tiein --help` lists each command with its whole first sentence (click cuts at ~45
    characters: "Add-ons for a cart of IDS as a whole: complements of the..."), and every
    command, sub-commands included, has one that ends a sentence."""
    out = invoke("--help")
    listing = " ".join(out.split("Commands:", 1)[1].split())
    assert "..." not in listing
    for name, cmd in cli.commands.items():
        assert f"{name} {summary_line(cmd)}" in listing, name
    for path, cmd in _commands(cli):
        summary = summary_line(cmd)
        assert summary and summary[0].isupper() and summary.endswith("."), (path, summary)
        if isinstance(cmd, click.Group):  # sub-commands in their group's help, whole too
            sub = " ".join(invoke(*path.split(), "--help").split("Commands:", 1)[1].split())
            for name, child in cmd.commands.items():
                assert f"{name} {summary_line(child)}" in sub


def test_summary_line_takes_the_first_sentence() -> None:
    cmd = click.Command("x", help="Build it from files (a, b.c). The rest.\n\nMore.")
    assert summary_line(cmd) == "Build it from files (a, b.c)."
    assert summary_line(click.Command("y", help="One line\nwrapped here: still one.")) == (
        "One line wrapped here: still one."
    )
    assert summary_line(click.Command("z", help="Long.", short_help="Short one.")) == "Short one."


@pytest.mark.parametrize("command", ["build", "update"])
def test_map_fields_are_listed_from_the_mapping(command: str) -> None:
    from tiein.loaders.mapping import CatalogColumns, Options, OrderColumns, SetColumns, ViewColumns

    text = invoke(command, "--help").split("--map FIELD=COLUMN fields", 1)[1]
    for section, dc in (
        ("catalog", CatalogColumns),
        ("orders", OrderColumns),
        ("views", ViewColumns),
        ("sets", SetColumns),
        ("options", Options),
    ):
        # the section's line and its continuation lines, up to the next section or the footnote
        lines = text.splitlines()
        first = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{section} "))
        block = [lines[first].strip()[len(section) :]]
        for line in lines[first + 1 :]:
            sections = ("catalog", "orders", "views", "sets", "options", "*")
            if not line.strip() or line.strip().split()[0] in sections:
                break
            block.append(line)
        listed = {name.strip(" *") for name in " ".join(" ".join(block).split()).split(",")}
        assert listed == {f.name for f in fields(dc)}, (section, listed)
    assert "category*" in text and "timestamp*" in text  # several columns allowed


def test_money_commands_name_the_currency_setting() -> None:
    for command in ("bundle", "addons", "export", "serve", "build"):
        assert "TIEIN_CURRENCY" in " ".join(invoke(command, "--help").split()), command
    assert "--currency" in invoke("--help")
    assert "TIEIN_CURRENCY" not in invoke("stats", "--help")


def test_currency_option_sets_the_currency_for_the_command_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.delenv("TIEIN_CURRENCY", raising=False)
    seen: list[str | None] = []

    @cli.command("_seen", hidden=True)
    def _seen() -> None:
        seen.append(os.environ.get("TIEIN_CURRENCY"))

    try:
        invoke("--currency", "USD", "_seen")
        assert seen == ["USD"] and "TIEIN_CURRENCY" not in os.environ  # put back after the command
        result = CliRunner().invoke(cli, ["--currency", "dollars and cents", "_seen"])
        assert result.exit_code == 2 and "currency" in result.output
    finally:
        del cli.commands["_seen"]


def test_commands_silence_third_party_progress_bars(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hugging Face's "Loading weights" / download bars are off in every command (tiein draws its
    own); the user's own setting wins, and the test process gets its environment back."""
    import os

    seen: dict[str, str | None] = {}

    @cli.command("_env", hidden=True)
    def _env() -> None:
        seen.update({k: os.environ.get(k) for k in QUIET_LIBRARIES})

    try:
        for k in QUIET_LIBRARIES:
            monkeypatch.delenv(k, raising=False)
        invoke("_env")
        assert seen == QUIET_LIBRARIES and not any(k in os.environ for k in QUIET_LIBRARIES)
        monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "info")
        invoke("_env")
        assert seen["TRANSFORMERS_VERBOSITY"] == "info"
    finally:
        del cli.commands["_env"]


# ----------------------------------------------------------------------------- progress
class _Terminal(io.StringIO):
    encoding = "utf-8"

    def isatty(self) -> bool:
        return True


def test_no_bars_or_escape_codes_when_not_a_terminal() -> None:
    for stream in (io.StringIO(), _Pipe()):
        p = TqdmProgress(stream=stream)
        p("load · read orders", 1, 4)
        p("embed · encode", 256, 1000)
        p.close()
        assert stream.getvalue() == ""
        with spinner("loading", stream=stream):
            time.sleep(0.3)
        assert stream.getvalue() == ""


class _Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_bars_on_a_terminal_and_off_with_dumb_term(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _Terminal()
    p = TqdmProgress(stream=out)
    p("load · read orders", 1, 4)
    p.close()
    assert "load" in out.getvalue() and "1/4" in out.getvalue()
    monkeypatch.setenv("TERM", "dumb")
    out = _Terminal()
    p = TqdmProgress(stream=out)
    p("load · read orders", 1, 4)
    p.close()
    assert out.getvalue() == ""
    assert not TqdmProgress(enabled=False, stream=_Terminal()).enabled


def test_rates_are_per_second_and_only_for_real_units() -> None:
    """The bar that appears after the first batch does not count that batch as done in no time
    (the "11671106.78/s" of the issue); phases that count steps of unlike size show no rate."""
    out = _Terminal()
    p = TqdmProgress(stream=out)
    p("mine · pairs", 3, 10)
    for i in range(1, 5):
        p("embed · encode", 256 * i, 2560)
        time.sleep(0.2)
    p("embed · encode", 2560, 2560)
    p.close()
    text = out.getvalue()
    rates = [
        float(x) * {"": 1, "k": 1e3, "M": 1e6}[u] for x, u in re.findall(r"([\d.]+)([kM]?) titles/s", text)
    ]
    assert rates and max(rates) < 20_000, rates  # 256 titles per 0.2 s, not millions
    mine = [line for line in re.split(r"[\r\n]", text) if line.startswith("mine")]
    assert mine and not any("/s" in line for line in mine)


def test_spinner_while_the_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing reports while the embedding model loads (~24 s on the default model): a spinner says
    so, with the elapsed time, and is cleared when the next bar starts."""
    out = _Terminal()
    monkeypatch.setattr(TqdmProgress, "SPIN_AFTER", 0.1)
    p = TqdmProgress(stream=out)
    p("mine · assemble", 1, 1)
    monkeypatch.setitem(sys.modules, "sentence_transformers", types.ModuleType("sentence_transformers"))
    time.sleep(0.6)
    p("embed · encode", 256, 1000)
    time.sleep(0.4)  # a bar part-way through stays on screen: no spinner over it
    p("embed · encode", 1000, 1000)
    time.sleep(0.6)
    p.close()
    text = out.getvalue()
    assert "loading the embedding model…" in text and re.search(r"model… \d+s", text)
    after = text.split("\rembed:", 1)[1]
    assert "loading the embedding model" not in after  # embed has started: just "working…"
    part_way, done = after.split("1.00k/1.00k", 1)
    assert "working" not in part_way and "working… (after embed)" in done


def test_spinner_context() -> None:
    out = _Terminal()
    with spinner("loading the embedding model (minilm)…", stream=out):
        time.sleep(0.35)
    text = out.getvalue()
    assert "loading the embedding model (minilm)… 0s" in text and text.endswith("\r\x1b[K")


# ----------------------------------------------------------------------------- tables
TITLES = ["折叠露营椅", "Folding camping chair", "L'OREAL欧莱雅丝柔雾感唇粉膏棒 哑光口红唇膏", "tent"]


def test_chinese_table_lines_up_by_display_width() -> None:
    rows = [[f"p{i}", t, f"{(i + 1) * 99.5:,.2f}"] for i, t in enumerate(TITLES)]
    lines = table_lines(rows, header=["id", "title", "price"], align="<<>", max_width=[None, 24, None])
    widths = {display_width(line) for line in lines}
    assert len(widths) == 1, lines  # every line ends in the same column
    starts = {display_width(line[: line.index(r[1][:2])]) for line, r in zip(lines[1:], rows, strict=True)}
    assert len(starts) == 1  # the title column starts in the same column
    assert "…" in lines[3] and display_width(fit(TITLES[2], 24)) <= 24
    assert pad("折叠椅", 8) == "折叠椅  " and pad("tent", 8) == "tent    " and pad("9.5", 5, ">") == "  9.5"
    assert display_width("折叠露营椅") == 10 and display_width("tent") == 4


def test_build_show_block_lines_up_chinese_titles(monkeypatch: pytest.MonkeyPatch) -> None:
    """`tiein build --show`: the related rows' prices end in the same column whatever the script."""
    from tiein.cli import base

    def related_payload(st: object, pid: str, kind: str, k: int) -> dict[str, list[dict[str, object]]]:
        rows = [
            {
                "score": 0.9,
                "product_id": f"{kind[:3]}{i}",
                "title": t,
                "price": 10.0 * (i + 1),
                "explanation_en": "x",
            }
            for i, t in enumerate(TITLES)
        ]
        return {"related": rows}

    def bundle_payload(st: object, pid: str, rules: object = None) -> dict[str, object]:
        return {"reason": {"en": "no add-ons are known for this product yet"}}

    fake = types.SimpleNamespace(
        related_payload=related_payload, bundle_payload=bundle_payload, shop_bundle_rules=lambda home: None
    )
    monkeypatch.setitem(sys.modules, "tiein.service", fake)
    store = types.SimpleNamespace(product=lambda pid: {"product_id": pid, "title": "帐篷", "price": 299.0})

    @click.command()
    def show() -> None:
        base._print_product_block(store, "tent")

    out = CliRunner().invoke(show).output
    rows = [line for line in out.splitlines() if line.startswith("    0.900")]
    assert len(rows) == 8 and len({display_width(r) for r in rows}) == 1, rows


# ----------------------------------------------------------------------------- search
@pytest.fixture(scope="module")
def camping_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The camping shop built with title embeddings (the default model, offline)."""
    from tiein.pipeline import BuildOptions, build

    home = tmp_path_factory.mktemp("search-camping")
    build(
        BuildOptions(
            catalog=CAMPING / "catalog.csv",
            orders=CAMPING / "orders.csv",
            home=home,
            threads=1,
            discover_scenes=False,
        )
    )
    return home


def test_search_command(camping_home: Path) -> None:
    from tiein.graph import open_store
    from tiein.service import search_payload

    got = json.loads(
        invoke("search", "folding camping chair", "-k", "3", "--json", "--home", str(camping_home))
    )
    assert got["query"] == "folding camping chair" and got["model"] == "use-multilingual-v3"
    assert got["results"][0]["product_id"] == "chair" and len(got["results"]) == 3
    assert {"product_id", "title", "price", "similarity"} <= set(got["results"][0])
    # the same answer as the service (the API's /v1/search)
    from tiein.cli.search import IndexSearcher

    st = open_store(str(camping_home / "graph"))
    try:
        assert search_payload(st, IndexSearcher(str(camping_home)), "folding camping chair", 3) == got
    finally:
        st.close()
    text = invoke("search", "折叠椅", "-k", "5", "--home", str(camping_home))
    assert text.startswith("5 products for “折叠椅”")
    assert len(text.strip().splitlines()) == 6
    # the list filters, as on the API: the chair costs 129, lamp_pro is out of stock
    cheap = json.loads(
        invoke(
            "search",
            "camping",
            "-k",
            "10",
            "--max-price",
            "100",
            "--in-stock",
            "--json",
            "--home",
            str(camping_home),
        )
    )
    assert cheap["results"] and all(
        r["price"] <= 100 and r["product_id"] != "lamp_pro" for r in cheap["results"]
    )


def test_search_without_an_index_says_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["search", "chair", "--home", str(tmp_path)])
    assert result.exit_code != 0
    assert "embedding index" in str(result.exception) and "--no-embeddings" in str(result.exception)
    result = CliRunner().invoke(cli, ["search", "--help"])
    assert "Search products by what their titles mean" in result.output
