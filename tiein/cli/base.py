"""The command group, the options every command shares, progress bars and spinners, output
helpers (display-width-aware tables) and :func:`main` (one plain line per user mistake, no
tracebacks)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from tiein.cli.display import (  # noqa: F401  (re-exported: the CLI modules import them from here)
    MODEL_MODULES,
    PHASE_UNITS,
    STEP_BAR,
    TqdmProgress,
    _frames,
    _Ticker,
    display_width,
    fit,
    is_terminal,
    pad,
    print_table,
    spinner,
    table_lines,
)
from tiein.errors import TieinError

DATASET_NAMES = (
    "online_retail",
    "instacart",
    "groceries",
    "groceries_zh",
    "taobao_makeup",
    "amazon_gift_cards",
    "bread_basket",
)

HOME_HELP = (
    "Working directory for the graph, the FAISS index and caches [env TIEIN_HOME; default ./tiein-data]."
)
STORE_HELP = (
    "Graph store: a directory for the embedded store (default HOME/graph) or a Neo4j URL "
    "(bolt://host:7687, neo4j://…; credentials from TIEIN_NEO4J_USER / TIEIN_NEO4J_PASSWORD) [env TIEIN_STORE]."
)
CURRENCY_HELP = (
    "Currency of the prices in bundle pitches and reasons: a symbol (¥ $ € 元) or a code "
    "(CNY USD EUR), the same in the Chinese and the English text [env TIEIN_CURRENCY; default ¥]."
)
# Commands that show money (pitches, budgets, thresholds): their --help names the currency setting.
MONEY_COMMANDS = frozenset({"build", "bundle", "addons", "export", "serve"})
CURRENCY_NOTE = (
    "Prices in pitches and reasons are shown with TIEIN_CURRENCY (a symbol ¥ $ € 元 or a code "
    "CNY USD EUR; default ¥; or `tiein --currency CODE ...`) and two decimals."
)

# Environment set for every command (unless the user set it): third-party libraries draw no
# progress bars of their own (Hugging Face's "Loading weights", downloads); tiein draws its own.
QUIET_LIBRARIES = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error"}


# ----------------------------------------------------------------------------- help
def summary_line(cmd: click.Command) -> str:
    """What a command does, in full, for the command list of ``--help``: its ``short_help``, else
    the first sentence of its help (click's own cuts it at ~45 characters, mid-phrase).

    >>> summary_line(click.Command("x", help="Do one thing (a, b.c). Then more.\\n\\nDetails."))
    'Do one thing (a, b.c).'
    """
    if cmd.short_help:
        return cmd.short_help
    text = (cmd.help or "").split("\f", 1)[0]
    first = re.split(r"\n\s*\n", text.strip(), maxsplit=1)[0]
    first = " ".join(first.replace("\b", " ").split())
    sentence = re.split(r"(?<=[.!?])\s+(?=[A-Z`(\[])", first, maxsplit=1)[0]
    return sentence


def map_fields_help() -> str:
    """The ``--map`` fields, per section, read from :mod:`tiein.loaders.mapping` (its dataclasses
    are the one list; imported only when help is shown)."""
    import textwrap
    from dataclasses import MISSING, fields

    from tiein.loaders.mapping import CatalogColumns, Options, OrderColumns, SetColumns, ViewColumns

    def names(t: type) -> str:
        return ", ".join(f.name + ("*" if f.default_factory is not MISSING else "") for f in fields(t))

    rows = [
        ("catalog", CatalogColumns),
        ("orders", OrderColumns),
        ("views", ViewColumns),
        ("sets", SetColumns),
        ("options", Options),
    ]
    lines = [
        textwrap.fill(names(t), width=88, initial_indent=f"  {section:<8} ", subsequent_indent=" " * 11)
        for section, t in rows
    ]
    return (
        "\b\n--map FIELD=COLUMN fields (FIELD sets every section that has it, SECTION.FIELD one section):\n"
        + "\n".join(lines)
        + "\n  * several columns, comma-separated: category=department,aisle (top -> leaf)"
        "\n\nOptions take a value, not a column (--map encoding=gbk --map id_case=upper); an unmapped "
        "field uses a column of the same name; orders.title=Description maps one section only. "
        "See docs/building.md."
    )


class TieinCommand(click.Command):
    """A command whose epilog may be computed when help is shown (``epilog_fn``: e.g. the
    ``--map`` fields, read from tiein.loaders.mapping only then, so ``tiein --help`` stays
    instant), with the currency setting named for commands that show money."""

    def __init__(self, *args: Any, epilog_fn: Callable[[], str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.epilog_fn = epilog_fn

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        parts = [self.epilog] if self.epilog else []
        if self.epilog_fn is not None:
            parts.append(self.epilog_fn())
        if self.name in MONEY_COMMANDS:
            parts.append(CURRENCY_NOTE)
        for part in parts:
            formatter.write_paragraph()
            with formatter.indentation():
                formatter.write_text(part)


class TieinGroup(click.Group):
    """The command group: commands listed with their whole first sentence (wrapped, never cut),
    sub-groups and their commands of the same classes."""

    command_class = TieinCommand
    group_class = type  # sub-groups (scenes, feedback) are TieinGroups too

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is None or cmd.hidden:
                continue
            rows.append((name, summary_line(cmd)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


# The options most commands share, declared once.
home_option = click.option("--home", help=HOME_HELP)
store_option = click.option("--store", help=STORE_HELP)


F = TypeVar("F", bound=Callable[..., Any])


def where_options(fn: F) -> F:
    """``--home`` and ``--store``: which graph a command reads or writes."""
    return home_option(store_option(fn))


class _Size(click.ParamType):  # type: ignore[type-arg]  # generic only from click 8.2
    """A memory size: bytes, or a number with K, M, G or T (tiein.sysmem.parse_size)."""

    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        from tiein.errors import ConfigError
        from tiein.sysmem import parse_size

        try:
            return parse_size(str(value), "--memory-budget")
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)


memory_budget_option = click.option(
    "--memory-budget",
    type=_Size(),
    help="Memory this build may hold, e.g. 6G: the store's load keeps within it (a table "
    "whose load would not fit is refused before anything is written) and the summary reports the peak against it [env "
    "TIEIN_MEMORY_BUDGET; default: the memory free].",
)


def json_option(text: str = "JSON output.") -> Callable[[F], F]:
    """``--json`` (parameter ``as_json``) with ``text`` as its help."""
    return click.option("--json", "as_json", is_flag=True, help=text)


def _home(home: str | None) -> Path:
    from tiein.options import default_home

    return Path(home) if home else default_home()


def _open_store(home: str | None, store: str | None):  # type: ignore[no-untyped-def]
    from tiein.graph import open_store
    from tiein.options import default_store_url

    return open_store(store or default_store_url(_home(home)))


def _set_env(ctx: click.Context, name: str, value: str, *, keep: bool = False) -> None:
    """Set the environment variable ``name`` for this command and put it back when the command
    ends (an in-process caller, e.g. a test, keeps its own environment); ``keep``: only if unset."""
    before = os.environ.get(name)
    if keep and before is not None:
        return
    os.environ[name] = value

    def restore() -> None:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before

    ctx.call_on_close(restore)


def _currency_option(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """``--currency``: checked, then TIEIN_CURRENCY for this command."""
    if value is None:
        return
    from tiein.money import CURRENCY_ENV, currency_symbol

    try:
        currency_symbol(value)
    except TieinError as exc:
        raise click.BadParameter(str(exc)) from None
    _set_env(ctx, CURRENCY_ENV, value)


@click.group(
    cls=TieinGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(package_name="tiein")
@click.option(
    "--currency",
    metavar="SYMBOL|CODE",
    callback=_currency_option,
    expose_value=False,
    help=CURRENCY_HELP,
)
def cli() -> None:
    """tiein — product relations and bundles for cross-selling (关联销售 / 搭售).

    \b
    Typical use:
      tiein build --dataset online_retail        # files → statistics → embeddings → relations → graph
      tiein related 85123A --kind complement     # what to offer with a product
      tiein stats                                # what the graph holds
    \b
    Your own files:
      tiein build --catalog items.csv --orders orders.csv --map product_id=sku --map title=name
    """
    ctx = click.get_current_context()
    for name, value in QUIET_LIBRARIES.items():
        _set_env(ctx, name, value, keep=True)


def _print_summary(summary: Any) -> None:
    c = summary.counts
    click.echo(f"built {summary.source} → {summary.store}")
    click.echo(
        f"  {c['products']:,} products · {c['order_lines']:,} order lines · {c['baskets']:,} baskets · "
        f"{c['co_purchase_pairs']:,} co-purchase pairs · {c['co_view_pairs']:,} co-view pairs · "
        f"{c['listed_pairs']:,} listed pairs"
    )
    if "sets" in c:  # content sets (--sets)
        click.echo(f"  {c['sets']:,} content sets · {c['set_pairs']:,} shown-together pairs")
    rel = ", ".join(f"{k} {v:,}" for k, v in sorted(summary.relations.items())) or "none"
    click.echo(f"  relations: {rel}  (from {c['candidates']:,} candidate pairs)")
    season = getattr(summary, "season", None) or {}
    if season.get("with_season"):  # tiein.season: relations with per-window evidence
        windows = season.get("calendar") or "months"
        click.echo(
            f"  seasons ({windows}): {season['with_season']:,} relations with season evidence, "
            f"{season['seasonal']:,} seasonal (`tiein related ID --at YYYY-MM-DD`)"
        )
    if summary.model:
        click.echo(f"  embeddings: {summary.model}")
    secs = " · ".join(f"{k} {v:.1f}s" for k, v in summary.seconds.items() if k != "total")
    click.echo(f"  time: {summary.seconds['total']:.1f}s ({secs})")
    line = _memory_line(getattr(summary, "memory", None) or {})
    if line:
        click.echo(f"  memory: {line}")
    sc = summary.scenes or {}
    if sc.get("count"):
        click.echo(f"  scenes: {sc['count']} {sc['source']} · {sc['members']:,} members  ({sc['file']})")
        for role in sc.get("empty_roles", []):
            click.echo(f"  scenes: no product fills role {role}")
    elif sc.get("note"):
        click.echo(f"  scenes: {sc['note']}")
    for line in summary.load_report:
        click.echo(f"  input: {line}")


def _memory_line(memory: dict[str, Any]) -> str:
    """ "peak 2.3 GB · budget 4.0 GB · embedding worker 0.7 GB" from a build summary's
    ``memory``; "" when it holds nothing to say."""
    gb = 1 << 30
    parts = []
    peak, budget = memory.get("peak"), memory.get("budget")
    if peak:
        parts.append(f"peak {peak / gb:.1f} GB")
    if budget:
        over = " (exceeded: the steps before the store do not keep to it yet; docs/scale-out.md)"
        parts.append(f"budget {budget / gb:.1f} GB" + (over if peak and peak > budget else ""))
    if memory.get("embedding_peak"):  # its own process, before the steps that peak
        parts.append(f"embedding worker {memory['embedding_peak'] / gb:.1f} GB")
    return " · ".join(parts)


def _fmt_price(p: Any) -> str:
    return "-" if p is None else f"{p:,.2f}"


def _fmt_role(product: dict[str, Any]) -> str:
    """ ", hero item" for a product with a sales role, "" without."""
    role = product.get("sales_role")
    return f", {role} item" if role else ""


def _print_product_block(st: Any, pid: str, home: Path | None = None) -> None:
    """The demo's view of one product: its best complements and substitutes with the seller's
    explanation, then its bundle and pitch (all through tiein.service, like the API; the bundle
    under the rules of ``home``'s shop.toml)."""
    from tiein.service import bundle_payload, related_payload, shop_bundle_rules

    p = st.product(pid)
    click.echo("")
    click.echo(f"{p['product_id']}  {p['title']}  (price {_fmt_price(p['price'])}{_fmt_role(p)})")
    for kind in ("complement", "substitute"):
        rows = related_payload(st, pid, kind, 3)["related"]
        click.echo(f"  {kind}s:")
        if not rows:
            click.echo("    (none)")
        for r in rows:
            click.echo(
                f"    {r['score']:.3f}  {pad(r['product_id'], 10)} {pad(r['title'] or '', 45)}  "
                f"{pad(_fmt_price(r['price']), 9, '>')}"
            )
            click.echo(f"           {r['explanation_en']}")
    b = bundle_payload(st, pid, rules=shop_bundle_rules(home))
    if b["reason"]:
        click.echo(f"  bundle: none — {b['reason']['en']}")
    else:
        items = " + ".join(f"{i['product']['product_id']} {i['product']['title']}" for i in b["items"])
        click.echo(f"  bundle: {p['product_id']} + {items}")
        click.echo(f"          {b['pitch']['en']}  |  {b['pitch']['zh']}")


# Settings of `tiein serve` read only from the environment (tiein.api.Settings; a test keeps this
# list complete without importing the API here: `tiein --help` stays instant).


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:  # one line, like every other error
        hint = f" (see {exc.ctx.command_path} --help)" if exc.ctx else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except TieinError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2 if exc.status < 500 else 1)
    except KeyboardInterrupt:
        click.echo("interrupted; the previous graph is untouched", err=True)
        sys.exit(130)
    except OSError as exc:  # disk full, permission denied, ... where no check caught it first
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"error: {where}{exc.strerror or exc}", err=True)
        sys.exit(1)
    except Exception as exc:  # a bug: still one line; the traceback with TIEIN_DEBUG=1
        if os.environ.get("TIEIN_DEBUG"):
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        click.echo(
            f"error: internal error ({type(exc).__name__}: {first}); TIEIN_DEBUG=1 shows the traceback",
            err=True,
        )
        sys.exit(1)
