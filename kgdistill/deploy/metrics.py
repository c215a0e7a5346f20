"""Prometheus metrics of a served model (prometheus_client, one registry per app): requests, latency, batch
sizes, errors by kind, the model's version, and drift: the share of inputs whose best score falls below the
validation range (its 5th percentile, from the export's manifest).  Labels carry endpoints, status codes and
error kinds only, never anything from a request body."""
from __future__ import annotations

from collections import deque

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
RECENT = 1000   # inputs the recent drift share is taken over


class ServeMetrics:
    def __init__(self, version: str, method: str, kind: str, validation: dict[str, float] | None):
        r = self.registry = CollectorRegistry()
        self.requests = Counter("kgdistill_requests", "HTTP requests by endpoint and status", ["endpoint", "status"],
                                registry=r)
        self.latency = Histogram("kgdistill_request_seconds", "Request latency, end to end in the server",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch = Histogram("kgdistill_batch_size", "Inputs per predict request", buckets=BATCH_BUCKETS,
                               registry=r)
        self.model_batch = Histogram("kgdistill_model_batch_size", "Inputs per model call (requests that arrive "
                                     "while the model is busy are scored together)", buckets=BATCH_BUCKETS,
                                     registry=r)
        self.errors = Counter("kgdistill_errors", "Rejected or failed requests by kind", ["kind"], registry=r)
        Info("kgdistill_model", "The served model", registry=r).info({"version": version, "method": method,
                                                                       "kind": kind})
        self.inputs = Counter("kgdistill_inputs", "Inputs scored", registry=r)
        self.below = Counter("kgdistill_inputs_below_validation", "Inputs whose best score fell below the 5th "
                             "percentile of the validation samples' best scores (drift)", registry=r)
        self.recent_share = Gauge("kgdistill_drift_recent_share", f"Share of the last {RECENT} inputs below the "
                                  "validation range", registry=r)
        self.low = None if validation is None else float(validation["p05"])
        if self.low is not None:
            Gauge("kgdistill_validation_best_score_p05", "Lower edge of the validation range",
                  registry=r).set(self.low)
        self._recent: deque[bool] = deque(maxlen=RECENT)

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def observe_scores(self, best_scores) -> None:
        """Per predict request: its batch size, and which inputs scored below the validation range."""
        self.batch.observe(len(best_scores))
        self.inputs.inc(len(best_scores))
        if self.low is None:
            return
        flags = [float(b) < self.low for b in best_scores]
        self.below.inc(sum(flags))
        self._recent.extend(flags)
        self.recent_share.set(sum(self._recent) / len(self._recent))

    def render(self) -> bytes:
        return generate_latest(self.registry)
