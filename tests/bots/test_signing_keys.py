"""The replacement of botbuilder's signing-key refresh still fits the pinned botbuilder."""

import pytest
from botframework.connector.auth import jwt_token_extractor

from bots import signing_keys

pytestmark = pytest.mark.unit


def test_botbuilder_still_refreshes_keys_through_the_method_that_is_replaced() -> None:
    assert signing_keys._ORIGINAL is not None  # botbuilder's own, as imported
    metadata = jwt_token_extractor._OpenIdMetadata("https://example.invalid/metadata")
    assert {"url", "keys", "last_updated"} <= set(vars(metadata))

    signing_keys.fetch_signing_keys_off_the_loop()

    assert jwt_token_extractor._OpenIdMetadata._refresh is signing_keys._refresh
