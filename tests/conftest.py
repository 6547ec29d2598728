"""Shared fixtures: ``store`` is a fresh, empty graph store, once per kind in tests/stores.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from stores import STORE_FACTORIES, StoreKind

from graph.base import GraphStore


@pytest.fixture(params=STORE_FACTORIES)
def store_kind(request: pytest.FixtureRequest) -> StoreKind:
    return request.param


@pytest.fixture
def store(store_kind: StoreKind, tmp_path: Path) -> Iterator[GraphStore]:
    s = store_kind.make(tmp_path)
    yield s
    s.close()
