"""Timed duties: the scheduler's tick, the automated callback calls, the official calendar's import."""
