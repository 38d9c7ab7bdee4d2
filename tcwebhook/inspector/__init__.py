"""The inspector: a local web page to watch, understand and act on stored Tradecloud events."""

from __future__ import annotations

from tcwebhook.inspector.app import create_app

__all__ = ["create_app"]
