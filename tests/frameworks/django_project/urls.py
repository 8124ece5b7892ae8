"""The test project's URLconf: the views, and the admin at /admin/."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("count", views.count),
    path("async-count", views.async_count),
    path("set", views.put),
    path("get", views.get),
    path("drop", views.drop),
    path("noop", views.noop),
    path("login", views.sign_in),
    path("whoami", views.whoami),
    path("logout", views.sign_out),
    path("flash", views.flash),
    path("inbox", views.inbox),
    path("expiry", views.expiry),
    path("cycle", views.cycle),
    path("boom", views.boom),
    path("key", views.echo_key),
    path("admin/", admin.site.urls),
]
