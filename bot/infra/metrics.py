"""Prometheus metrics of one process (GET /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http = Counter("haochaping_http_requests", "HTTP requests answered", ["route", "status"],
                            registry=self.registry)
        self.inbound = Counter("haochaping_inbound_messages", "Messages from people", ["channel", "outcome"],
                               registry=self.registry)
        self.ratings = Counter("haochaping_ratings", "Ratings stored", ["channel", "grade"],
                               registry=self.registry)
        self.sends = Counter("haochaping_outbox_sends", "Send attempts by result", ["channel", "result"],
                             registry=self.registry)
        self.tick = Histogram("haochaping_tick_seconds", "Duration of one scheduler pass",
                              registry=self.registry)
        self.work_orders = Counter("haochaping_work_order_events", "Work-order events by action", ["action"],
                                   registry=self.registry)
        self.cases = Counter("haochaping_cases_ingested", "Cases posted", ["result"], registry=self.registry)
        # Reporting upward (bot/figures/reporting/push.py sets the gauges after each pass).
        self.reports = Gauge("haochaping_upstream_reports", "Reports to upstream platforms still to resolve",
                             ["profile", "status"], registry=self.registry)
        self.report_oldest = Gauge("haochaping_upstream_report_oldest_pending_seconds",
                                   "Age of the oldest pending report", ["profile"], registry=self.registry)
        self.report_attempts = Counter("haochaping_upstream_report_attempts",
                                       "Pushes to upstream platforms by result (sent, duplicate, retry, rejected)",
                                       ["profile", "result"], registry=self.registry)

        # Set by each scheduler pass (the worker that runs the scheduler, or `tick`): what waits (deploy/alerts.yml).
        self.outbox_due = Gauge("haochaping_outbox_due", "Messages due to go and not sent yet, after the pass",
                                registry=self.registry)
        self.work_orders_overdue = Gauge("haochaping_work_orders_overdue", "Open work orders past a deadline",
                                         registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
