"""One module per provider: each verifies, parses and renders its own protocol, and sends through it."""
