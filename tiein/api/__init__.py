"""The HTTP API (``tiein serve``): FastAPI over one graph store, OpenAPI docs at ``/docs``.

    from tiein.api import Settings, create_app
    app = create_app(Settings(home=Path("tiein-data")))     # or Settings.from_env()

Every answer comes from :mod:`tiein.service` (the code path the CLI and batch export share), so
the JSON here is the same as ``tiein related --json`` / ``tiein bundle --json``. Endpoints live
under ``/v1``:

    GET  /v1/health                         store reachable? graph counts, build meta, version
    GET  /v1/products/{id}                  one product
    GET  /v1/products/{id}/related          ?kind=complement|substitute|upsell|series&k=10
    GET  /v1/products/{id}/bundle           ?scene=&size=3&budget=&mix=hero,profit
    GET  /v1/products/{id}/view             the analyst's HTML page of the product's neighbourhood
    POST /v1/cart/addons                    {"cart": [...], "threshold": 200, "k": 5}
    GET  /v1/search                         ?q=text&k=10 (title embeddings + FAISS)
    GET  /v1/scenes, /v1/scenes/{name}
    POST /v1/cypher                         read-only analyst Cypher (row cap, time limit)

One error envelope for every error: ``{"error": {"code", "message", "details"}}``. The mapping
from the project's error tree (tiein/errors.py) to HTTP is :data:`ERROR_MAP`, the only place it is
made; request validation errors are reshaped into the same envelope (422, naming each parameter);
anything unexpected is a 500 envelope with an ``error_id`` that is logged server-side with the
traceback (the body never holds one).

Concurrency. Reads of the in-memory snapshot (the embedded store's default) run on the event
loop: they take well under a millisecond, less than a hop to a worker thread and back costs;
everything that waits on disk or the network (LadybugDB read per request, Neo4j, Cypher, search)
runs in the server's thread pool (``State.call``). ``tiein serve --workers N`` runs N processes,
each on its own ``SO_REUSEPORT`` socket (:mod:`~tiein.api.workers`). The store is opened
once per process; the embedded store serialises calls with its own lock (one LadybugDB connection;
a call takes 0.3-3 ms) and re-reads its generation pointer on every call, so a rebuild by
``tiein build`` in another process is picked up without a restart. The Neo4j store uses the
driver's thread-safe pool. The encoder and the FAISS index for ``/v1/search`` load lazily, once;
the index is reloaded when its manifest changes (a rebuild).

Modules: :mod:`~tiein.api.settings` (Settings, limits), :mod:`~tiein.api.errors` (ERROR_MAP, the
envelope), :mod:`~tiein.api.schemas` (response models), :mod:`~tiein.api.bodies` (request bodies),
:mod:`~tiein.api.state` (store, search, feedback cache, token check), :mod:`~tiein.api.app`
(create_app and the routes), :mod:`~tiein.api.page` (the analyst's HTML page).
"""

from tiein.api.app import app_from_env, create_app, open_api_store
from tiein.api.errors import ERROR_MAP, envelope, error_status
from tiein.api.page import neighbourhood, render_product_page
from tiein.api.settings import Settings, is_loopback
from tiein.api.state import FeedbackCache, Search, State
from tiein.errors import ServiceUnavailable

__all__ = [
    "ERROR_MAP",
    "FeedbackCache",
    "Search",
    "ServiceUnavailable",
    "Settings",
    "State",
    "app_from_env",
    "create_app",
    "envelope",
    "error_status",
    "is_loopback",
    "neighbourhood",
    "open_api_store",
    "render_product_page",
]
