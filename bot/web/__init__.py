"""The aiohttp application: one module per concern, assembled in app.py."""
