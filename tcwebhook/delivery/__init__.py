"""The outbox: hand stored events on to the ERP side (directory, command and HTTP sinks)."""

# The task target of a GET notification's fetch from the API (delivery/fetching.py). Here, not
# there: the status and routing modules name it without loading the API client and aiohttp.
FETCH_TARGET = "@fetch"
