"""The central store: the one source of truth for cases, ratings, messages and conversations."""
