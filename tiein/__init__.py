"""tiein: a graph-based product relation engine for cross-selling.

One package. ``tiein.graph``, ``tiein.loaders`` and ``tiein.embeddings`` live in the top-level
folders ``graph/``, ``loaders/`` and ``embeddings/`` of the repository (linked into this folder),
so the design's layout stays visible while everything installs and imports as ``tiein``.

Imports go one way, from the top of this list down, never up (tests/test_layers.py reads every
import and fails on one that points up)::

    api / cli / export          tiein.api, tiein.api.guard, tiein.cli, tiein.export
      ↓
    service (+ feedback)        tiein.service, tiein.bundles, tiein.feedback, tiein.cypher,
      ↓                         tiein.cypher_worker
    pipeline                    tiein.pipeline, tiein.update, tiein.merge, tiein.rollback,
      ↓                         tiein.options, tiein.state, tiein.home
    mining / relations          tiein.mining, tiein.spark_mining, tiein.spark_classify, tiein.features,
      ↓                         tiein.relations, tiein.scenes, tiein.explain, tiein.checks
    loaders / embeddings / graph   tiein.loaders, tiein.embeddings, tiein.graph
      ↓
    contracts and errors        tiein.errors, tiein.model, tiein.faults, tiein.durable

Light on import: nothing heavy (torch, faiss, duckdb, ladybug, neo4j) is imported here,
so ``tiein --help`` answers instantly.
"""

__version__ = "0.1.0"
