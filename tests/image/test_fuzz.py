"""schemathesis over the image API's OpenAPI document: never a 5xx (see tests/support/fuzz.py)."""

from __future__ import annotations

import schemathesis

from tests.support.fuzz import FUZZ, api_fixtures, call_without_5xx

fuzz_cloud, fuzz_token, image_schema = api_fixtures("image", ["identity", "image"])

# Glance's JSON-patch media types are JSON on the wire.
schemathesis.serializer.alias("application/openstack-images-v2.1-json-patch", "application/json")
schemathesis.serializer.alias("application/openstack-images-v2.0-json-patch", "application/json")

schema = schemathesis.pytest.from_fixture("image_schema")


@schema.parametrize()
@FUZZ
def test_image_api_never_answers_5xx(case, fuzz_token: str) -> None:  # type: ignore[no-untyped-def]
    call_without_5xx(case, fuzz_token)
