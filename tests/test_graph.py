"""Meta's Graph API helpers shared by WhatsApp, Messenger and Instagram."""

import httpx
import pytest

from chatbridge.errors import (
    ErrorCodes,
    ProviderError,
    ProviderPolicyError,
    RateLimitedError,
)
from chatbridge.plugin import graph

CODES = ErrorCodes(policy=frozenset({(10, 2018278)}), auth=frozenset({10}))


def _answer(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, json=body, request=httpx.Request("POST", "https://g.test/x"))


def test_a_code_and_subcode_pair_is_finer_than_the_code() -> None:
    error = {"message": "outside the window", "code": 10, "error_subcode": 2018278}
    raised = graph.error_for(_answer(400, {"error": error}), CODES, provider="messenger")
    assert isinstance(raised, ProviderPolicyError) and raised.code == 10
    assert str(raised) == "messenger API error 10/2018278: outside the window"


@pytest.mark.parametrize(
    "error",
    [
        {"code": [1], "error_subcode": {"a": 1}, "error_data": "details as a string"},
        {"code": True, "error_data": ["x"], "message": 5},
        "not an object",
        None,
    ],
)
def test_error_bodies_of_any_shape_give_a_typed_error(error: object) -> None:
    raised = graph.error_for(_answer(429, {"error": error}), CODES, provider="whatsapp")
    assert isinstance(raised, RateLimitedError)  # by the HTTP status


def test_a_body_that_is_not_json_keeps_its_text() -> None:
    response = httpx.Response(502, text="<html>bad gateway</html>")
    raised = graph.error_for(response, CODES, provider="instagram")
    assert (
        isinstance(raised, ProviderError) and raised.provider_message == "<html>bad gateway</html>"
    )
