"""The ``tiein`` command line. A thin layer: every command calls library functions.

Heavy modules (duckdb, torch, faiss, ladybug, neo4j) are imported inside the commands, so
``tiein --help`` answers instantly. User mistakes print one plain ``error: ...`` line and exit
with status 2; no tracebacks.

Modules: :mod:`~tiein.cli.base` (the group, shared options, output helpers, ``main``),
:mod:`~tiein.cli.build` (build, update, rollback, datasets), :mod:`~tiein.cli.query` (related,
stats, bundle, addons), :mod:`~tiein.cli.scenes`, :mod:`~tiein.cli.search`, :mod:`~tiein.cli.serve`,
:mod:`~tiein.cli.ops` (cypher, export), :mod:`~tiein.cli.feedback` (feedback, report).
"""

from tiein.cli import build, feedback, graph_files, lineup, lists, ops, query, rules, scenes, search, serve  # noqa: F401  (each module adds its commands to the group)
from tiein.cli.base import cli, main

__all__ = ["cli", "main"]
