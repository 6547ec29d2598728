"""The payload types of tiein.service and the API's response models declare the same fields: the
API answers with the service's payloads, so a field added to one and not the other fails here.

Pydantic models document each field for OpenAPI (tiein/api/schemas.py); the service's TypedDicts
(tiein/service/types.py) type the same dicts without pydantic (the CLI and export need no API
extras). A payload may carry a few keys the model does not declare (its ``extra="allow"`` passes
them through); they are listed here, so each one is a decision."""

from __future__ import annotations

from typing import Any, get_type_hints

import pytest

from tiein.service import types

schemas = pytest.importorskip("tiein.api.schemas")

# payload type -> (response model, keys the payload has that the model leaves undeclared)
PAIRS: dict[Any, tuple[str, set[str]]] = {
    # "fallback": present only on a trending fallback; "at": only when ranked for a date (so an
    # answer without at= is the same JSON from the API and the CLI, key for key); "segment": only
    # when a segment was asked
    types.RelatedPayload: ("RelatedResponse", {"fallback", "at", "segment"}),
    types.BundlePayload: ("BundleResponse", {"scene_fallback", "at", "segment"}),
    types.AddonsPayload: ("AddonsResponse", {"at", "segment"}),
    types.ScenesPayload: ("ScenesResponse", set()),
    types.SceneDetailPayload: ("SceneDetail", set()),
    types.SearchPayload: ("SearchResponse", set()),
    types.StatsPayload: ("GraphStats", {"generations"}),
    types.HealthPayload: ("HealthResponse", set()),
    types.CypherPayload: ("CypherResponse", {"limit", "row_count", "store"}),
    types.RulesPayload: ("RulesResponse", set()),
    types.PairingsPayload: ("PairingsResponse", set()),
    types.TrendingPayload: ("TrendingResponse", set()),
}


@pytest.mark.parametrize("payload", list(PAIRS), ids=lambda t: t.__name__)
def test_payload_and_response_model_declare_the_same_fields(payload: Any) -> None:
    name, undeclared = PAIRS[payload]
    model = getattr(schemas, name)
    keys = set(get_type_hints(payload))
    fields = set(model.model_fields)
    assert fields <= keys, f"{name} declares {sorted(fields - keys)} that {payload.__name__} lacks"
    assert keys - fields == undeclared, f"{payload.__name__} vs {name}"


def test_every_payload_type_is_paired() -> None:
    declared = {
        v
        for v in vars(types).values()
        if isinstance(v, type) and issubclass(v, dict) and v.__module__ == types.__name__
    }
    assert declared - set(PAIRS) == {types.NeighbourhoodPayload}  # an HTML page, no JSON model


def test_lineup_payloads_and_response_models_declare_the_same_fields() -> None:
    """The lineup's payload types (tiein.lineup.types) and the response models of its route
    (tiein.api.lineup_routes), nested rows included."""
    from tiein.api import lineup_routes as routes
    from tiein.lineup import types as lineup_types

    pairs: dict[Any, Any] = {
        lineup_types.LineupPayload: routes.LineupResponse,
        lineup_types.LineupSlot: routes.LineupSlotModel,
        lineup_types.LineupPick: routes.LineupPickModel,
        lineup_types.LineupCheck: routes.LineupCheckModel,
        lineup_types.LineupRelation: routes.LineupRelationModel,
        lineup_types.LineupLeftOut: routes.LineupLeftOutModel,
    }
    for payload, model in pairs.items():
        assert set(get_type_hints(payload)) == set(model.model_fields), (
            f"{payload.__name__} vs {model.__name__}"
        )
