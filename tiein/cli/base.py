"""The command group, the options every command shares, progress bars, output helpers and
:func:`main` (one plain line per user mistake, no tracebacks)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

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


class TqdmProgress:
    """progress(step, done, total) callbacks rendered as one tqdm bar per step on stderr."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bars: dict[str, Any] = {}

    def __call__(self, step: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        # "store · CO_PURCHASED": one bar per phase, the sub-step shown after it
        phase, _, detail = step.partition(" · ")
        bar = self.bars.get(phase)
        if bar is None:
            bar = tqdm(
                total=total or None,
                desc=f"{phase:<8}",
                unit="",
                leave=False,
                file=sys.stderr,
                dynamic_ncols=True,
            )
            self.bars[phase] = bar
        if total and bar.total != total:
            bar.total = total
        bar.n = done
        if detail:
            bar.set_postfix_str(detail, refresh=False)
        bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


# The options most commands share, declared once.
home_option = click.option("--home", help=HOME_HELP)
store_option = click.option("--store", help=STORE_HELP)


def where_options(fn: Any) -> Any:
    """``--home`` and ``--store``: which graph a command reads or writes."""
    return home_option(store_option(fn))


def json_option(text: str = "JSON output.") -> Any:
    """``--json`` (parameter ``as_json``) with ``text`` as its help."""
    return click.option("--json", "as_json", is_flag=True, help=text)


def _home(home: str | None) -> Path:
    from tiein.pipeline import default_home

    return Path(home) if home else default_home()


def _open_store(home: str | None, store: str | None):  # type: ignore[no-untyped-def]
    from tiein.graph import open_store
    from tiein.pipeline import default_store_url

    return open_store(store or default_store_url(_home(home)))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="tiein")
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


def _print_summary(summary: Any) -> None:
    c = summary.counts
    click.echo(f"built {summary.source} → {summary.store}")
    click.echo(
        f"  {c['products']:,} products · {c['order_lines']:,} order lines · {c['baskets']:,} baskets · "
        f"{c['co_purchase_pairs']:,} co-purchase pairs · {c['co_view_pairs']:,} co-view pairs · "
        f"{c['listed_pairs']:,} listed pairs"
    )
    rel = ", ".join(f"{k} {v:,}" for k, v in sorted(summary.relations.items())) or "none"
    click.echo(f"  relations: {rel}  (from {c['candidates']:,} candidate pairs)")
    if summary.model:
        click.echo(f"  embeddings: {summary.model}")
    secs = " · ".join(f"{k} {v:.1f}s" for k, v in summary.seconds.items() if k != "total")
    click.echo(f"  time: {summary.seconds['total']:.1f}s ({secs})")
    sc = summary.scenes or {}
    if sc.get("count"):
        click.echo(f"  scenes: {sc['count']} {sc['source']} · {sc['members']:,} members  ({sc['file']})")
        for role in sc.get("empty_roles", []):
            click.echo(f"  scenes: no product fills role {role}")
    elif sc.get("note"):
        click.echo(f"  scenes: {sc['note']}")
    for line in summary.load_report:
        click.echo(f"  input: {line}")


def _fmt_price(p: Any) -> str:
    return "-" if p is None else f"{p:,.2f}"


def _fmt_role(product: dict[str, Any]) -> str:
    """ ", hero item" for a product with a sales role, "" without."""
    role = product.get("sales_role")
    return f", {role} item" if role else ""


def _print_product_block(st: Any, pid: str) -> None:
    """The demo's view of one product: its best complements and substitutes with the seller's
    explanation, then its bundle and pitch (all through tiein.service, like the API)."""
    from tiein.service import bundle_payload, related_payload

    p = st.product(pid)
    click.echo("")
    click.echo(f"{p['product_id']}  {p['title']}  (price {_fmt_price(p['price'])}{_fmt_role(p)})")
    for kind in ("complement", "substitute"):
        rows = related_payload(st, pid, kind, 3)["related"]
        click.echo(f"  {kind}s:")
        if not rows:
            click.echo("    (none)")
        for r in rows:
            click.echo(f"    {r['score']:.3f}  {r['product_id']:<10} {r['title']}  {_fmt_price(r['price'])}")
            click.echo(f"           {r['explanation_en']}")
    b = bundle_payload(st, pid)
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
