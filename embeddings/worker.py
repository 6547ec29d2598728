"""The build's title embedding in a process of its own: ``python -m tiein.embeddings.worker JOB``.

The build (tiein/embeddings/background.py) writes the texts and the job (model, threads, cache
folder) into the folder ``JOB`` and starts this worker, which loads the encoder, embeds the texts
through the cache as :func:`tiein.embeddings.embed_texts` always does, writes ``vectors.npy``
and ends. Torch and sentence-transformers are imported here, not in the build: their half a
gigabyte is never part of the build's memory, and their seconds of pure-Python imports no longer
hold the build's interpreter lock while it mines.

It talks to the build in JSON lines: on its standard output ``{"progress": [stage, done, total]}``
after each batch, then ``{"done": model name, "peak": bytes}`` or ``{"error": class name,
"message": text}`` (a :class:`tiein.errors.TieinError`, raised again in the build as that class);
anything a library prints goes to its standard error instead. On its standard input the build
writes ``help`` once it waits for the vectors (a core is free: a second thread takes batches,
the same vectors, tiein.embeddings.encoder); when that input closes (the build ended, failed or
was killed) the worker stops at once.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import IO, Any

import numpy as np

from tiein.errors import TieinError

# a job's folder, made in the build's home (its name starts so): removed by the build or the worker
# when it ends, and by the home's recovery (tiein/home.py) when both were killed at once
JOB_PREFIX = ".embedding-"
JOB_FILE = "job.json"  # {"model": name or null, "threads": int or null, "cache_dir": path}
TEXTS_FILE = "texts.json"  # the texts, a JSON list
VECTORS_FILE = "vectors.npy"  # float32 (len(texts), dim), written last


def _watch(stream: IO[str], help_wanted: threading.Event, job: Path) -> None:
    """Set ``help_wanted`` on a ``help`` line; when ``stream`` closes before the worker ended, the
    build is gone (killed: it removes the job folder itself otherwise), so remove the job folder
    and stop the process at once."""
    for line in stream:
        if line.strip() == "help":
            help_wanted.set()
    shutil.rmtree(job, ignore_errors=True)
    os._exit(1)  # nothing will read the vectors


def run(job: Path, out: IO[str], help_wanted: threading.Event) -> int:
    """Embed the job's texts (see the module doc); the exit status."""
    from tiein.embeddings.encoder import load_encoder
    from tiein.embeddings.products import embed_texts
    from tiein.sysmem import peak_memory

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message, ensure_ascii=False) + "\n")
        out.flush()

    try:
        spec = json.loads((job / JOB_FILE).read_text(encoding="utf-8"))
        texts = json.loads((job / TEXTS_FILE).read_text(encoding="utf-8"))
        encoder = load_encoder(spec["model"], threads=spec["threads"], plain=True)
        vectors = embed_texts(
            texts,
            encoder,
            cache_dir=Path(spec["cache_dir"]),
            progress=lambda stage, done, total: send({"progress": [stage, done, total]}),
            help_wanted=help_wanted,
        )
        np.save(job / VECTORS_FILE, vectors)
    except TieinError as exc:
        send({"error": type(exc).__name__, "message": str(exc)})
        return 1
    except Exception as exc:  # noqa: BLE001  (the build gets one plain line; MemoryError too)
        send({"error": "TieinError", "message": f"embedding the titles failed: {type(exc).__name__}: {exc}"})
        return 1
    send({"done": encoder.name, "peak": peak_memory()})
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tiein.embeddings.worker JOB_FOLDER (started by tiein build)", file=sys.stderr)
        return 2
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")  # the messages' own copy of standard output
    os.dup2(2, 1)  # what libraries print goes to standard error
    help_wanted = threading.Event()
    job = Path(argv[0])
    threading.Thread(target=_watch, args=(sys.stdin, help_wanted, job), daemon=True).start()
    return run(job, out, help_wanted)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
