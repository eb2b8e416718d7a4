"""One package per provider (channels/<name>/): each owns its configuration, webhooks, parsing, signature or
token checks, sending and error classification. channels/registry.py lists the SMS providers; base.py holds
what they share with the application."""
