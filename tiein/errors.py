"""The one error tree of tiein. Imports nothing.

    TieinError                      base; ``status`` is the HTTP status an API maps it to
    ├── InputError                  a user's file or value is wrong (file, row, column, why)   400 *
    ├── ConfigError                 a bad option, mapping or config file                        400 *
    ├── NotFound                    an unknown product / scene / kind                           404
    │   └── ProductNotFound
    ├── CypherError                 an analyst query is invalid or not allowed                 400
    │   └── WriteRefused            a read-only query tried to write                            403
    ├── MissingDependency           an optional package is not installed (with install hint)    500
    ├── ServiceUnavailable          a part of the API this deployment cannot serve now          503
    └── StoreError                  the graph store failed                                      500
        ├── StoreUnavailable        the store cannot be reached / opened, or is damaged         503
        ├── StorageFull             no space left to write (disk full)                          507
        └── NotEnoughMemory         a load that cannot fit in the memory left (refused before)  507

* the HTTP API answers 422 for these: in a request they are a bad parameter (tiein.api.ERROR_MAP).

User mistakes are reported by the CLI as one plain line (exit 2 below status 500, else 1), never
a traceback.
"""

from __future__ import annotations


class TieinError(Exception):
    """Base of every error tiein raises on purpose."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(TieinError):
    """Bad input data. Names the file, the 1-based row (data rows, header excluded unless
    stated), the column, and what is wrong."""

    status = 400

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.file = file
        self.row = row
        self.column = column
        where = []
        if file is not None:
            where.append(str(file))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        full = (", ".join(where) + ": " + message) if where else message
        super().__init__(full)
        self.reason = message


class ConfigError(TieinError):
    status = 400


class NotFound(TieinError):
    status = 404


class ProductNotFound(NotFound):
    def __init__(self, product_id: str) -> None:
        super().__init__(f"product {product_id!r} is not in the graph")
        self.product_id = product_id


class CypherError(TieinError):
    status = 400


class WriteRefused(CypherError):
    status = 403


class MissingDependency(TieinError):
    def __init__(self, package: str, extra: str, *, hint: str | None = None) -> None:
        # ``hint`` replaces the pip line for what pip cannot install (a Java runtime)
        super().__init__(
            f"the optional package {package!r} is not installed; "
            + (hint or f"install it with: pip install 'tiein[{extra}]'")
        )


class ServiceUnavailable(TieinError):
    """A part of the API this deployment cannot serve right now (no search index in the home,
    the Cypher module missing). HTTP 503, like a store that cannot be reached."""

    status = 503


class StoreError(TieinError):
    status = 500


class StoreUnavailable(StoreError):
    status = 503


class StorageFull(StoreError):
    status = 507


class NotEnoughMemory(StoreError):
    """A store load refused before it starts: it would need more memory than the machine (or
    the container) has left, and the operating system would kill the process midway."""

    status = 507
