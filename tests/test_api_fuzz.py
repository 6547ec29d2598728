"""Property-based fuzzing of the live API against its own OpenAPI spec (schemathesis): for every
operation, generated requests (valid and invalid) must never get a server error (no 5xx at all:
the store is up and the home has an index, so even the documented 503 must not appear), and every
response must match the documented status codes, content types and schemas (the error envelope
included). Kept to ~30 s with a small example budget per operation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from test_api import camping_home, serve

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
MAX_EXAMPLES = 15


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = camping_home(tmp_path_factory)
    with serve("--home", str(home)) as url:
        httpx.get(f"{url}/v1/search", params={"q": "warm up"}, timeout=120)  # loads the encoder once
        yield url


OPERATIONS = [
    ("GET", "/v1/health"),
    ("GET", "/v1/products/{product_id}"),
    ("GET", "/v1/products/{product_id}/related"),
    ("GET", "/v1/products/{product_id}/bundle"),
    ("GET", "/v1/products/{product_id}/view"),
    ("POST", "/v1/cart/addons"),
    ("POST", "/v1/events"),
    ("GET", "/v1/search"),
    ("GET", "/v1/scenes"),
    ("GET", "/v1/scenes/{name}"),
    ("POST", "/v1/cypher"),
    ("GET", "/v1/rules"),
    ("PUT", "/v1/rules"),
    ("DELETE", "/v1/rules"),
    ("GET", "/v1/pairings"),
    ("GET", "/v1/trending"),
    ("POST", "/v1/lineup"),
]


@pytest.fixture(scope="module")
def api_schema(live_url: str) -> Any:
    return schemathesis.openapi.from_url(f"{live_url}/openapi.json")


def test_every_operation_is_fuzzed(api_schema: Any) -> None:
    spec_ops = {(m.upper(), p) for p, item in api_schema.raw_schema["paths"].items() for m in item}
    assert spec_ops == set(OPERATIONS)


NO_INPUT = {("GET", "/v1/health"), ("GET", "/v1/scenes")}  # nothing to make invalid
CASES = [
    pytest.param(m, p, mode, id=f"{m} {p} {mode.value}")
    for m, p in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if not (mode is GenerationMode.NEGATIVE and (m, p) in NO_INPUT)
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_no_server_errors_and_responses_match_the_spec(
    api_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: Any) -> None:
        case.call_and_validate(checks=CHECKS, timeout=30)

    check()
