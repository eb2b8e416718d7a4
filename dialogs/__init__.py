"""The conversational core: pure functions from (state, input, now) to (state, replies, effects).

Nothing here does I/O, reads a clock or touches a global: `bot/` feeds it and carries out what it asks.
"""
