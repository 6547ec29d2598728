"""The merchant-rules routes: ``GET/PUT/DELETE /v1/rules`` (:mod:`tiein.rules`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse

from tiein.api.bodies import RulesRequest
from tiein.api.params import _conflict
from tiein.api.schemas import (
    RulesChange,
    RulesResponse,
    Text,
    _errors,
)
from tiein.api.settings import MAX_ID_LENGTH, Settings
from tiein.api.state import _store
from tiein.errors import ConfigError, InputError
from tiein.graph.base import RulesConflict
from tiein.service import (
    import_rules,
    remove_rules,
    rules_payload,
)

if TYPE_CHECKING:
    pass


def add_rules_routes(router: APIRouter, settings: Settings, auth: list[Any]) -> None:
    """Add the rules routes to ``router`` (``auth``: the token dependency, or none)."""

    @router.get(
        "/rules", response_model=RulesResponse, responses=_errors(), dependencies=auth, tags=["rules"]
    )
    def rules_list(
        request: Request,
        anchor: Annotated[
            Text | None,
            Query(
                min_length=1,
                max_length=MAX_ID_LENGTH,
                description="Only the rules of this anchor (and of '*').",
            ),
        ] = None,
    ) -> dict[str, Any]:
        """The merchant's rules (pin / block / boost), kept beside the graph: every rebuild and
        update keeps them; ``version`` counts the changes."""
        return dict(rules_payload(_store(request), anchor=anchor))

    @router.put(
        "/rules", response_model=RulesChange, responses=_errors(400, 409), dependencies=auth, tags=["rules"]
    )
    def rules_put(request: Request, body: Annotated[RulesRequest, Body()]) -> dict[str, Any] | JSONResponse:
        """Add rules (a rule for the same anchor, item and kind is replaced); ``replace=true``
        makes them the whole set. With ``version``, 409 when the rules changed meanwhile."""
        rows = [r.model_dump(exclude_none=True) for r in body.rules]
        try:
            return import_rules(_store(request), rows, replace=body.replace, expected_version=body.version)
        except RulesConflict as exc:
            return _conflict(exc)
        except InputError as exc:  # name the rule as the body does
            where = f"rules[{exc.row - 1}]: " if exc.row is not None else ""
            raise ConfigError(where + str(exc).split(": ", 2)[-1]) from exc

    @router.delete(
        "/rules", response_model=RulesChange, responses=_errors(409), dependencies=auth, tags=["rules"]
    )
    def rules_delete(
        request: Request,
        rule_id: Annotated[
            list[int] | None, Query(alias="id", description="Rule ids to remove (repeat the parameter).")
        ] = None,
        anchor: Annotated[
            Text | None,
            Query(min_length=1, max_length=MAX_ID_LENGTH, description="Remove the rules of this anchor."),
        ] = None,
        item: Annotated[
            Text | None,
            Query(
                min_length=1,
                max_length=MAX_ID_LENGTH,
                description="Remove the rules about this item (with anchor: that pair).",
            ),
        ] = None,
        remove_all: Annotated[bool, Query(alias="all", description="Remove every rule.")] = False,
        version: Annotated[
            int | None,
            Query(ge=0, description="The version the change is based on: 409 when it changed meanwhile."),
        ] = None,
    ) -> dict[str, Any] | JSONResponse:
        """Remove rules by id, by anchor (and item) or all."""
        try:
            return remove_rules(
                _store(request),
                ids=rule_id or (),
                anchor=anchor,
                item=item,
                remove_all=remove_all,
                expected_version=version,
            )
        except RulesConflict as exc:
            return _conflict(exc)
