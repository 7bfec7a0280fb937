"""Prometheus metrics: requests and uploads counted by every worker, rounds and nodes read from the database.

Labels never carry a node id, a token or a path with ids in it: requests are labelled by their route's template
(``/api/v1/rounds/{round_id}/update``), rounds by state, nodes by status — what operators already see.

With several workers, ``serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` (an empty folder) before they start, and each
scrape sums what every worker wrote there (prometheus-client's multiprocess mode); the database figures are read once
per scrape by whichever worker answers it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from .db import Node, Round

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["CONTENT_TYPE_LATEST", "REQUEST_SECONDS", "UPLOADS", "UPLOAD_BYTES", "render"]

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUEST_SECONDS = Histogram(
    "pneumodesk_coordinator_request_seconds", "Time to answer a request, by route template, method and status class.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0))
UPLOADS = Counter("pneumodesk_coordinator_uploads", "Update and masked-input uploads answered, by outcome.",
                  ["outcome"])
UPLOAD_BYTES = Counter("pneumodesk_coordinator_upload_bytes", "Bytes received in upload bodies.")


class DatabaseCollector(Collector):
    """Rounds by state and nodes by status, read from the database at scrape time."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def collect(self) -> Iterator[Metric]:
        rounds = GaugeMetricFamily("pneumodesk_coordinator_rounds", "Rounds by state.", labels=["state"])
        nodes = GaugeMetricFamily("pneumodesk_coordinator_nodes", "Enrolled nodes by status (approved: active).",
                                  labels=["status"])
        with self._sessions() as session:
            for state, count in session.execute(select(Round.state, func.count()).group_by(Round.state)):
                rounds.add_metric([state], count)
            for status, count in session.execute(select(Node.status, func.count()).group_by(Node.status)):
                nodes.add_metric([status], count)
        yield rounds
        yield nodes


def render(sessions: sessionmaker[Session]) -> bytes:
    """The text exposition of every metric (all workers' in multiprocess mode) and the database figures."""
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY  # this process's metrics, with its memory and CPU (process collector)
    return generate_latest(registry) + generate_latest(_database_registry(sessions))


def _database_registry(sessions: sessionmaker[Session]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(sessions))
    return registry
