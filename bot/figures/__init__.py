"""Figures: rankings and totals, published snapshots, exports, reporting upward."""
