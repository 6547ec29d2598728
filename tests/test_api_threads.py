"""Where the API runs a read: on the event loop when the store is the in-memory snapshot (a hop
to a worker thread and back costs more CPU than the answer), in the thread pool when the store
waits on disk or the network (LadybugDB read per request, Neo4j). The answers are the same either
way (tests/test_api.py compares both servers)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import tiein.api.app as app_module
from tiein.api import Settings, create_app
from tiein.graph.snapshot import SnapshotStore


def _on_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, bool]]:
    """Wrap the service calls of the product routes, recording whether each ran on the loop."""
    where: dict[str, bool] = {}

    def spy(name: str) -> Callable[..., Any]:
        real = getattr(app_module, name)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            where[name] = _on_loop()
            return real(*args, **kwargs)

        return wrapped

    for name in ("related_payload", "bundle_payload", "product_payload", "addons_payload"):
        monkeypatch.setattr(app_module, name, spy(name))
    yield where


def _ask(client: TestClient, pid: str) -> None:
    assert client.get(f"/v1/products/{pid}").status_code == 200
    assert client.get(f"/v1/products/{pid}/related?kind=complement&k=3").status_code == 200
    assert client.get(f"/v1/products/{pid}/bundle").status_code == 200
    assert client.post("/v1/cart/addons", json={"cart": [pid]}).status_code == 200


def test_snapshot_reads_run_on_the_event_loop(home: Path, seen: dict[str, bool]) -> None:
    with TestClient(create_app(Settings(home=home)), raise_server_exceptions=False) as client:
        state = client.app.state.tiein  # type: ignore[attr-defined]
        assert isinstance(state.store, SnapshotStore) and state.inline
        _ask(client, "tent")
    assert seen == dict.fromkeys(
        ("product_payload", "related_payload", "bundle_payload", "addons_payload"), True
    )


def test_store_reads_run_in_the_thread_pool(home: Path, seen: dict[str, bool]) -> None:
    with TestClient(create_app(Settings(home=home, snapshot=False)), raise_server_exceptions=False) as client:
        state = client.app.state.tiein  # type: ignore[attr-defined]
        assert not isinstance(state.store, SnapshotStore) and not state.inline
        _ask(client, "tent")
    assert seen == dict.fromkeys(
        ("product_payload", "related_payload", "bundle_payload", "addons_payload"), False
    )
