"""`tiein search`: products by what their titles mean (the API's ``GET /v1/search``)."""

from __future__ import annotations

import json
import sys

import click

from tiein.cli.base import (
    _fmt_price,
    _home,
    _open_store,
    cli,
    json_option,
    where_options,
)
from tiein.cli.display import is_terminal, pad, spinner
from tiein.cli.query import filter_options
from tiein.model import MAX_K
from tiein.rules import Filters


class IndexSearcher:
    """A :class:`tiein.service.Searcher` over the home's embedding index: the encoder its manifest
    names is loaded on the first search (with a spinner on a terminal)."""

    def __init__(self, home: str | None, *, threads: int | None = None, quiet: bool = False) -> None:
        from tiein.embeddings import ProductIndex
        from tiein.errors import ConfigError, InputError, StoreError
        from tiein.home import index_dir

        try:
            directory = index_dir(_home(home))
            self.index = ProductIndex.load(directory)
        except (ConfigError, InputError, StoreError) as exc:
            raise ConfigError(
                f"search needs the embedding index of a build with embeddings ({exc}); "
                "run `tiein build ...` without --no-embeddings"
            ) from None
        self.threads = threads
        self.quiet = quiet

    def search(self, text: str, k: int) -> tuple[str, list[tuple[str, float]]]:
        from tiein.embeddings import load_encoder

        with spinner(f"loading the embedding model ({self.index.model})…", enabled=not self.quiet):
            encoder = load_encoder(self.index.model, threads=self.threads, plain=True)
        vector = encoder.encode([text])
        return self.index.model, self.index.search(vector, k)[0]


@cli.command()
@click.argument("query")
@click.option(
    "-k", "k", default=10, show_default=True, type=click.IntRange(1, MAX_K), help="How many products."
)
@click.option("--threads", type=click.IntRange(1), help="CPU threads for the embedding model [default: 1].")
@json_option("JSON output (the API's /v1/search answer).")
@click.option("--quiet", is_flag=True, help="No spinner while the embedding model loads.")
@filter_options()
@where_options
def search(
    query: str,
    k: int,
    threads: int | None,
    as_json: bool,
    quiet: bool,
    filters: Filters,
    home: str | None,
    store: str | None,
) -> None:
    """Search products by what their titles mean (中文 or English), closest first.

    Uses the embedding index of the last build (a build without --no-embeddings), like the API's
    GET /v1/search.

    \b
    tiein search "露营椅"
    tiein search "heart shaped candle holder" -k 5 --json
    tiein search "lantern" --in-stock --max-price 20     # the list filters, as on the API
    """
    from tiein.service import search_payload

    searcher = IndexSearcher(home, threads=threads, quiet=quiet or as_json or not is_terminal(sys.stderr))
    st = _open_store(home, store)
    try:
        payload = search_payload(st, searcher, query, k, filters=filters)
    finally:
        st.close()
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    rows = payload["results"]
    click.echo(f"{len(rows)} products for “{query}” (model {payload['model']})")
    for r in rows:
        click.echo(
            f"  {r['similarity']:.3f}  {pad(str(r['product_id']), 12)} {pad(r.get('title') or '', 45)}  "
            f"{pad(_fmt_price(r.get('price')), 9, '>')}"
        )
