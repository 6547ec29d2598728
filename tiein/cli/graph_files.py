"""``tiein export-graph``: the built graph as files for bulk loaders (tiein.export.graph_files)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tiein.cli.base import _home, cli, home_option, json_option


@cli.command("export-graph")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A new directory for the files (nothing is overwritten; written whole or not at all).",
)
@click.option(
    "--format",
    "fmt",
    default="parquet",
    show_default=True,
    type=click.Choice(["parquet", "csv"]),
    help="parquet: for neo4j-admin 5.25+ (--input-type=parquet) and the embedded store's COPY; "
    "csv: for older Neo4j versions.",
)
@json_option("Print the summary as JSON.")
@home_option
def export_graph(out: Path, fmt: str, as_json: bool, home: str | None) -> None:
    """Write the graph of the last build as files for bulk loaders (Neo4j's offline importer, the embedded store's COPY).

    For graphs too big for a load through the driver: `neo4j-admin database import full` takes
    the files, as does the embedded store's `COPY <table> FROM <file>`. One file per node label
    and relationship type, each with its neo4j-admin header; the import command in
    neo4j-admin-import.sh, the constraints and indexes in schema.cypher, the embedded store's
    statements in embedded.cypher (docs/scale-out.md).

    \b
      tiein export-graph --out graph-files
      cd graph-files && ./neo4j-admin-import.sh && cypher-shell -f schema.cypher
      tiein export-graph --format csv --out graph-csv       # Neo4j before 5.25
    """
    from tiein.export.graph_files import write_graph_files
    from tiein.state import load_state

    state = load_state(_home(home))
    summary = write_graph_files(state.graph, out, fmt)
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False, indent=2))
        return
    rows = {**summary["nodes"], **summary["relationships"]}
    click.echo(f"wrote {len(rows)} tables ({sum(rows.values()):,} rows, {fmt}) to {out}")
    for name, n in rows.items():
        click.echo(f"  {name:<14} {n:>10,}")
    click.echo(f"Neo4j: cd {out} && ./neo4j-admin-import.sh, then cypher-shell -f schema.cypher")
