"""``tiein rollback``: answer with the previous build (or update) again.

The home keeps the generation before the current one (tiein/home.py) with its index and inputs,
including the graph it loaded (``inputs/graph/*.parquet``). Rolling back points the embedded store
back at the generation it keeps from that build (``switch_to_state``: a pointer switch, no
reload; a server finds that generation's snapshot files still there), or, on Neo4j or when the
store no longer holds it, loads that graph into the store (its own atomic switch); then it swaps
the home pointer's current and previous, so a second rollback returns to where the first started.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from tiein.errors import ConfigError, InputError
from tiein.faults import fault
from tiein.graph import open_store
from tiein.home import INPUTS, gen_dir, home_lock, read_pointer, recover, switch
from tiein.model import GraphData
from tiein.options import Progress, default_store_url
from tiein.pipeline import _phase
from tiein.state import GRAPH_PARTS


@dataclass
class RollbackResult:
    current: str
    previous: str | None
    built_at: str | None

    def to_dict(self) -> dict[str, str | None]:
        return {"current": self.current, "previous": self.previous, "built_at": self.built_at}


def graph_meta(inputs: Path) -> dict[str, Any]:
    """The meta of the graph a generation loaded (``inputs/graph/meta.json``)."""
    path = Path(inputs) / "graph" / "meta.json"
    try:
        meta = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"the previous generation's graph is damaged ({exc})", file=str(path.parent)
        ) from exc
    return meta if isinstance(meta, dict) else {}


def load_graph(inputs: Path) -> GraphData:
    """The graph a generation loaded, from its ``inputs/graph`` Parquet files."""

    root = Path(inputs) / "graph"
    try:
        parts = {p: pq.read_table(root / f"{p}.parquet").cast(s) for p, s in GRAPH_PARTS.items()}
        meta = json.loads((root / "meta.json").read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"the previous generation's graph is damaged ({exc})", file=str(root)) from exc
    return GraphData(**parts, meta=meta)


def rollback(home: Path, store_url: str | None = None, progress: Progress | None = None) -> RollbackResult:
    """Switch the home and its store back to the previous generation (ConfigError when there is
    none). A crash at any point leaves the home on one of the two generations, whole."""

    store_url = store_url or default_store_url(home)
    with home_lock(home):
        store = open_store(store_url)
        try:
            recover(home, store, store_url)
            pointer = read_pointer(home)
            if pointer.previous is None or not (gen_dir(home, pointer.previous) / INPUTS).is_dir():
                raise ConfigError(
                    f"nothing to roll back to in {home}: the home keeps one build before the current one, "
                    "and there is none yet"
                )
            inputs = gen_dir(home, pointer.previous) / INPUTS
            meta = graph_meta(inputs)
            if meta.get("state_id") != pointer.previous:
                raise ConfigError(
                    f"the previous generation {pointer.previous} does not describe its own graph"
                )
            # the embedded store keeps the generation before the current one: point back at it;
            # otherwise (Neo4j, or a store that no longer holds it) load the graph again
            switch_back = getattr(store, "switch_to_state", None)
            if switch_back is None or not switch_back(pointer.previous):
                store.replace(load_graph(inputs), progress=_phase(progress, "store"))
        finally:
            store.close()
        fault("rollback.after_store")
        switch(home, pointer.previous, store_url, previous=pointer.current)
    return RollbackResult(current=pointer.previous, previous=pointer.current, built_at=meta.get("built_at"))
