"""schemathesis over identity's OpenAPI document: never a 5xx (see tests/support/fuzz.py)."""

from __future__ import annotations

import schemathesis

from tests.support.fuzz import FUZZ, api_fixtures, call_without_5xx

fuzz_cloud, fuzz_token, identity_schema = api_fixtures("identity", ["identity"])
schema = schemathesis.pytest.from_fixture("identity_schema")


@schema.parametrize()
@FUZZ
def test_identity_api_never_answers_5xx(case, fuzz_token: str) -> None:  # type: ignore[no-untyped-def]
    call_without_5xx(case, fuzz_token)
