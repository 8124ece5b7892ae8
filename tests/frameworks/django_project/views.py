"""The views of the test project, written the way Django users write them."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse, JsonResponse


def count(request: HttpRequest) -> HttpResponse:
    """Add one to a counter in the session and answer with it."""
    request.session["n"] = request.session.get("n", 0) + 1
    return HttpResponse(str(request.session["n"]))


async def async_count(request: HttpRequest) -> HttpResponse:
    """The counter, in an async view through the session's async methods."""
    count = await request.session.aget("n", 0) + 1
    await request.session.aset("n", count)
    return HttpResponse(str(count))


def put(request: HttpRequest) -> HttpResponse:
    """Set every query parameter in the session (``/set?k=v``)."""
    for key, value in request.GET.items():
        request.session[key] = value
    return HttpResponse("ok")


def get(request: HttpRequest) -> JsonResponse:
    """Answer with the session's keys and values, and its key (``session_key``)."""
    return JsonResponse({"data": dict(request.session.items())})


def drop(request: HttpRequest) -> HttpResponse:
    """Remove the keys named in the query (``/drop?k``)."""
    for key in request.GET:
        request.session.pop(key, None)
    return HttpResponse("ok")


def noop(request: HttpRequest) -> HttpResponse:
    """Never touch the session."""
    return HttpResponse("noop")


def sign_in(request: HttpRequest) -> HttpResponse:
    """Log a user in with django.contrib.auth (which cycles the session key)."""
    user = authenticate(
        request, username=request.POST.get("username"), password=request.POST.get("password")
    )
    if user is None:
        return HttpResponse("bad credentials", status=403)
    login(request, user)
    messages.success(request, f"welcome {user.get_username()}")
    return HttpResponse("welcome")


def whoami(request: HttpRequest) -> HttpResponse:
    """Answer with the logged-in user's name, or ``anonymous``."""
    user = request.user
    return HttpResponse(user.get_username() if user.is_authenticated else "anonymous")


def sign_out(request: HttpRequest) -> HttpResponse:
    """Log out with django.contrib.auth (which flushes the session)."""
    logout(request)
    return HttpResponse("bye")


def flash(request: HttpRequest) -> HttpResponse:
    """Add a message with the messages framework (``/flash?text=…&level=info``)."""
    level = getattr(messages, request.GET.get("level", "info").upper())
    messages.add_message(request, level, request.GET.get("text", "hello"))
    return HttpResponse("flashed")


def inbox(request: HttpRequest) -> JsonResponse:
    """Answer with the pending messages, which reading consumes."""
    shown = [[message.level_tag, str(message)] for message in messages.get_messages(request)]
    return JsonResponse({"messages": shown})


def expiry(request: HttpRequest) -> JsonResponse:
    """Set the session's expiry (``/expiry?seconds=N``; 0: at browser close) and report it."""
    request.session["touched"] = True
    seconds = request.GET.get("seconds")
    request.session.set_expiry(None if seconds is None else int(seconds))
    return JsonResponse(
        {
            "age": request.session.get_expiry_age(),
            "at_browser_close": request.session.get_expire_at_browser_close(),
        }
    )


def cycle(request: HttpRequest) -> HttpResponse:
    """Move the session to a new key, keeping its data (what login does)."""
    request.session.cycle_key()
    return HttpResponse("cycled")


def boom(request: HttpRequest) -> HttpResponse:
    """Set a key, then fail."""
    request.session["boom"] = "set"
    raise RuntimeError("the view failed on purpose")


def echo_key(request: HttpRequest) -> HttpResponse:
    """Answer with the session key Django sees (what its cookie carries)."""
    request.session["seen"] = True
    return HttpResponse(json.dumps(request.session.session_key))
