"""CookieStore passes the client-side store contract."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from wsgisession import CookieStore
from wsgisession.stores.base import ClientSideStore
from wsgisession.testing import ClientSideStoreContract


class TestCookieStoreContract(ClientSideStoreContract):
    @pytest.fixture
    def new_store(self) -> Callable[[], ClientSideStore]:
        return CookieStore
