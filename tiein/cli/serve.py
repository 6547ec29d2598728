"""`tiein serve`: the HTTP API."""

from __future__ import annotations

import os
from pathlib import Path

import click

from tiein.cli.base import cli, where_options

SERVE_ENV_HELP = """\b
More settings, from the environment:
  TIEIN_API_CYPHER_MAX_ROWS   largest row cap a Cypher request may ask (10000)
  TIEIN_API_CYPHER_TIMEOUT    longest time limit of a Cypher request, s (10)
  TIEIN_API_CYPHER_MEMORY     memory of the worker process of a Cypher request, MB (2048)
  TIEIN_API_MAX_BODY          largest request body, bytes (1048576; 413 above it)
  TIEIN_API_NEO4J_RETRY       how long a failed Neo4j read is retried before a 503, s (1)
  TIEIN_API_FEEDBACK_REFRESH  feedback=true: how stale the feedback statistics may get, s
                              (10; recomputed in the background; 0: before the next request)"""


@cli.command(epilog=SERVE_ENV_HELP)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; a non-loopback one needs --token (or --insecure).",
)
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on."
)
@where_options
@click.option(
    "--token",
    envvar="TIEIN_API_TOKEN",
    help="Bearer token every request must carry [env TIEIN_API_TOKEN; default: no auth].",
)
@click.option(
    "--cors",
    "cors",
    multiple=True,
    metavar="ORIGIN",
    help="An origin allowed by CORS, e.g. https://shop.example (repeatable) [env TIEIN_API_CORS, comma-separated].",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes, one per core (each accepts on its own socket, so connections spread over them; with the snapshot they share one memory-mapped copy of the graph; a worker that dies is started again).",
)
@click.option(
    "--max-k",
    type=click.IntRange(1, 1000),
    help="Largest k a request may ask [env TIEIN_API_MAX_K; default 100].",
)
@click.option(
    "--snapshot/--no-snapshot",
    default=None,
    help="Serve reads from a snapshot of the embedded graph (the default for it): identical answers, bundles ~10x faster, reloaded after a rebuild without a stall. Its Arrow files are written once per generation beside it (~80 MB and a few seconds per 50k products and 800k relations) and memory-mapped by every worker: one copy shared by all, start-up ~0.1 s. --no-snapshot reads LadybugDB per request [env TIEIN_API_SNAPSHOT].",
)
@click.option("--insecure", is_flag=True, help="Allow a non-loopback --host without a token.")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    help="Server log level.",
)
def serve(
    host: str,
    port: int,
    home: str | None,
    store: str | None,
    token: str | None,
    cors: tuple[str, ...],
    workers: int,
    max_k: int | None,
    snapshot: bool | None,
    insecure: bool,
    log_level: str,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs) over the graph store.

    \b
    tiein serve                                    # http://127.0.0.1:8000/docs
    tiein serve --store bolt://neo4j:7687 --host 0.0.0.0 --token "$TOKEN"
    curl localhost:8000/v1/products/85123A/related?kind=complement
    """

    import uvicorn

    from tiein.api import Settings, is_loopback, open_api_store
    from tiein.errors import ConfigError

    settings = Settings.from_env(
        home=Path(home) if home else None,
        store=store,
        token=token,
        cors_origins=cors or None,
        max_k=max_k,
        snapshot=snapshot,
    )
    if settings.token is None and not is_loopback(host) and not insecure:
        raise ConfigError(
            f"refusing to serve on {host} without a token: give --token (or TIEIN_API_TOKEN), "
            "bind 127.0.0.1, or pass --insecure"
        )
    import dataclasses

    from tiein.home import recover_if_idle

    # a bad store URL fails here, not in every worker (without loading a snapshot just to check);
    # and what a crashed build left half-switched is finished before the first request
    plain = open_api_store(dataclasses.replace(settings, snapshot=False))
    try:
        for line in recover_if_idle(settings.home, plain, settings.store_url):
            click.echo(f"recovered: {line}", err=True)
    finally:
        plain.close()
    from tiein.graph import is_neo4j_url

    if settings.snapshot and is_neo4j_url(settings.store_url):
        raise ConfigError("--snapshot serves the embedded store only; Neo4j is read directly")
    os.environ.update(settings.to_env())  # the workers' app factory reads them back
    click.echo(
        f"tiein API on http://{host}:{port}/docs · store {settings.store_url.split('@')[-1]}"
        f" · auth {'on' if settings.token else 'off'}",
        err=True,
    )
    app = "tiein.api:app_from_env"
    if workers == 1:
        uvicorn.run(app, factory=True, host=host, port=port, log_level=log_level)
        return
    from tiein.api.workers import run_workers  # one socket per worker: connections spread over them

    run_workers(uvicorn.Config(app, factory=True, host=host, port=port, workers=workers, log_level=log_level))
