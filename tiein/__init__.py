"""tiein: a graph-based product relation engine for cross-selling.

Light on import: nothing heavy (torch, faiss, duckdb, ladybug, neo4j) is imported here,
so ``tiein --help`` answers instantly.
"""

__version__ = "0.1.0"
