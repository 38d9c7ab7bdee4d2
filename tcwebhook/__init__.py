"""tcwebhook: receive, check, replay and inspect Tradecloud webhooks."""

__version__ = "0.1.0"
