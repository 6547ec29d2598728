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
    types.RelatedPayload: ("RelatedResponse", set()),
    types.BundlePayload: ("BundleResponse", {"scene_fallback"}),
    types.AddonsPayload: ("AddonsResponse", set()),
    types.ScenesPayload: ("ScenesResponse", set()),
    types.SceneDetailPayload: ("SceneDetail", set()),
    types.SearchPayload: ("SearchResponse", set()),
    types.StatsPayload: ("GraphStats", {"generations"}),
    types.HealthPayload: ("HealthResponse", set()),
    types.CypherPayload: ("CypherResponse", {"limit", "row_count", "store"}),
    types.RulesPayload: ("RulesResponse", set()),
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
