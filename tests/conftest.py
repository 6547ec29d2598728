"""Shared fixtures: ``store`` is a fresh, empty graph store, once per kind in tests/stores.py;
``home`` / ``client`` (module scope) a home holding the contract suite's hand-made catalog and an
API test client over it, for modules that do not define their own; ``retail`` (module scope) the
first 60k order lines of Online Retail I and their products."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stores import STORE_FACTORIES, StoreKind

from tiein.graph.base import GraphStore


@pytest.fixture(params=STORE_FACTORIES)
def store_kind(request: pytest.FixtureRequest) -> StoreKind:
    return request.param


@pytest.fixture
def store(store_kind: StoreKind, tmp_path: Path) -> Iterator[GraphStore]:
    s = store_kind.make(tmp_path)
    yield s
    s.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_store_contract import catalog

    from tiein.graph.ladybug_store import EmbeddedStore

    home = tmp_path_factory.mktemp("catalog-home")
    with EmbeddedStore(home / "graph") as s:
        s.replace(catalog())
    return home


@pytest.fixture(scope="module")
def client(home: Path) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from tiein.api import Settings, create_app

    with TestClient(create_app(Settings(home=home)), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def retail() -> tuple[Any, Any]:
    """The first 60k order lines of Online Retail I (``$TIEIN_DATA`` or ../shared/data) and their
    products, with sales roles and product types, as the build has them before mining."""
    import os

    from tiein import loaders
    from tiein.features import with_sales_roles
    from tiein.options import BuildOptions
    from tiein.product_type import with_product_types

    data = Path(os.environ.get("TIEIN_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    if not (data / "online_retail").is_dir():
        pytest.skip(f"no Online Retail under {data}")
    loaded = loaders.load_dataset("online_retail", data_dir=data)
    orders = loaded.orders.slice(0, 60_000)
    products = with_product_types(with_sales_roles(loaded.products, orders, BuildOptions().roles))
    return products, orders
