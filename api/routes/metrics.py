"""``GET /metrics``: Prometheus's text format, for operators and autoscalers.

Every figure is read from Redis at scrape time (``tasks/state/metrics.py``),
so any API process answers for the whole cluster, and several API processes
behind one address agree. Labels name models, queues and job states only,
never an API key or a job. The handler is a plain ``def``: FastAPI runs it
in a worker thread, so the Redis round trip never holds the event loop.

Only operators may read it: ``CHORUS_METRICS_TOKEN`` as a bearer token.
Without that setting the route answers 404, so a deployment that never
chose a token publishes nothing (API keys belong to tenants and do not open
it).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from chorus.configs import get_settings
from chorus.tasks import clients
from chorus.tasks.errors import NotAuthenticated
from chorus.tasks.names import JOBS_QUEUE

router = APIRouter(include_in_schema=False)


class ClusterCollector:
    """Collects at each scrape, from Redis (a custom collector: the counts
    live in Redis, written by other processes, not in this one)."""

    def collect(self) -> Iterator[Metric]:
        models = sorted(clients.registry().models.values(), key=lambda m: m.name)
        queues = [JOBS_QUEUE, *(m.queue for m in models)]
        snap = clients.metrics().read([m.name for m in models], queues)

        depth = GaugeMetricFamily("chorus_queue_depth", "Messages waiting on the queue, every priority level together "
                                  "(not those reserved or running)", labels=["queue"])
        for queue in queues:
            depth.add_metric([queue], snap.queued[queue])
        yield depth

        workers = GaugeMetricFamily("chorus_workers", "Synthesis workers of the model that sent a heartbeat lately",
                                    labels=["model"])
        for model in models:
            workers.add_metric([model.name], snap.workers[model.queue])
        yield workers
        yield GaugeMetricFamily("chorus_jobs_workers", f"Workers serving {JOBS_QUEUE} (split, assembly) that sent "
                                "a heartbeat lately", value=snap.workers[JOBS_QUEUE])

        segments = CounterMetricFamily("chorus_segments", "Segments synthesised (cache hits not included; a "
                                       "redelivered segment counts each time it is spoken)", labels=["model"])
        audio = CounterMetricFamily("chorus_audio_seconds", "Seconds of audio synthesised", labels=["model"])
        work = CounterMetricFamily("chorus_synthesis_seconds", "Seconds spent synthesising (every take)",
                                   labels=["model"])
        latency = HistogramMetricFamily("chorus_segment_latency_seconds", "Synthesis time of one segment "
                                        "(every take)", labels=["model"])
        for name, figures in snap.models.items():
            segments.add_metric([name], figures.segments)
            audio.add_metric([name], figures.audio_seconds)
            work.add_metric([name], figures.synthesis_seconds)
            latency.add_metric([name], [(floatToGoString(bound), count) for bound, count in figures.latency],
                               sum_value=figures.synthesis_seconds)
        yield from (segments, audio, work, latency)

        jobs = GaugeMetricFamily("chorus_jobs", "Unfinished jobs by state", labels=["state"])
        for state, count in snap.jobs.items():
            jobs.add_metric([state], count)
        yield jobs
        finished = CounterMetricFamily("chorus_jobs_finished", "Jobs that ended, by final state (a resumed job "
                                       "that ends again counts again)", labels=["state"])
        for state, count in snap.finished.items():
            finished.add_metric([state], count)
        yield finished


_registry = CollectorRegistry()
_registry.register(ClusterCollector())


@router.get("/metrics")
def metrics(authorization: Annotated[str | None, Header()] = None) -> Response:
    token = get_settings().metrics_token
    if not token:
        return JSONResponse({"detail": "metrics are off: set CHORUS_METRICS_TOKEN"}, status_code=404)
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(), token.encode()):
        raise NotAuthenticated("send the metrics token as 'Authorization: Bearer <token>'")
    return Response(generate_latest(_registry), media_type=CONTENT_TYPE_LATEST)
