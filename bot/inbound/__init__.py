"""The inbound road of a person's message: the conversation (dedupe, lock, dialog step, commit) and the
hotline keypad."""
