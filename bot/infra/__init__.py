"""Infrastructure every room stands on: configuration, the runtime that wires it, state (locks, dedupe,
sessions) and its keys, logs, metrics, i18n, signed links, input limits, the personal-data mask, the audit log."""
