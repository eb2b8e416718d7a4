"""Rating rules: intake of cases, storing a rating (one, a follow-up, batches, bundles, visits), defaults,
and the intermediary services' ratings and complaints."""
