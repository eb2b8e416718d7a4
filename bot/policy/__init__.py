"""The policy and time: the jurisdiction's rules (policy file), day spans, the official calendar's working
days, when things are due, statistics' weights, SMS templates, handling types, reporting profiles."""
