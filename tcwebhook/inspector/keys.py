"""The inspector app's typed keys, shared by its views and actions."""

from __future__ import annotations

from aiohttp import web

from tcwebhook.config import Settings
from tcwebhook.inspector.live import Watcher
from tcwebhook.inspector.offload import PagePool
from tcwebhook.inspector.security import PageSecurity
from tcwebhook.store import Store

SETTINGS = web.AppKey("inspector_settings", Settings)
STORE = web.AppKey("inspector_store", Store)
SECURITY = web.AppKey("inspector_security", PageSecurity)
WATCHER = web.AppKey("inspector_watcher", Watcher)
PAGES = web.AppKey("inspector_pages", PagePool)
