"""The Pyramid security policy of the tests: the user id kept in the session, through
Pyramid's SessionAuthenticationHelper (or the one given, e.g. wsgisession's own)."""

from __future__ import annotations

from typing import Any

from pyramid.authentication import SessionAuthenticationHelper
from pyramid.request import Request

__all__ = ["SecurityPolicy"]


class SecurityPolicy:
    """A Pyramid 2 security policy that keeps the user id in the session."""

    def __init__(self, helper: Any = None) -> None:
        self.helper = helper if helper is not None else SessionAuthenticationHelper()

    def identity(self, request: Request) -> Any:
        return self.helper.authenticated_userid(request)

    def authenticated_userid(self, request: Request) -> Any:
        return self.helper.authenticated_userid(request)

    def permits(self, request: Request, context: Any, permission: str) -> bool:
        return self.identity(request) is not None

    def remember(self, request: Request, userid: Any, **kw: Any) -> list[tuple[str, str]]:
        return self.helper.remember(request, userid, **kw)  # type: ignore[no-any-return]

    def forget(self, request: Request, **kw: Any) -> list[tuple[str, str]]:
        return self.helper.forget(request, **kw)  # type: ignore[no-any-return]
