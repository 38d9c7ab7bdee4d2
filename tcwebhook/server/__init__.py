"""The HTTPS receiver: ``create_app`` builds the aiohttp app, ``run`` serves it."""
