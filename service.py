"""The inference service: BentoML wiring only (routes, guards and answers live in llmops).

Serve the latest build on 127.0.0.1:3000: make serve (make bento builds it). Two services:
`Generator` holds the model and answers every request as it comes, its rows joining the
running batch between decoding steps (`llmops.serve.scheduler`, at most params.yaml
`serve.max_batch_size` rows); `Api` serves the HTTP API at /v1 (`llmops.serve.api`) and calls
it. /livez, /readyz and /metrics are BentoML's and need no API key. Request and feedback
logs go to LLMOPS_LOG_DIR (logs/) and, when serve.log_uri or LLMOPS_LOG_URI names an object
store, also there (`llmops.serve.logsink`; flushed at shutdown).
"""

import asyncio
import logging
import os
import sys
from collections.abc import AsyncGenerator
from pathlib import Path

import bentoml
from fastapi import FastAPI
from pydantic import BaseModel

# A built Bento carries the library as a wheel (bentofile.yaml): served from the Bento, that
# copy is what runs, never an llmops the serving environment happens to have installed (an
# editable checkout would answer with code nobody packaged). A wheel of pure Python imports
# as it is; in development (service.py in the repository) there is none.
BENTO_WHEELS = Path(__file__).resolve().parent.parent / "env" / "python" / "wheels"
PACKAGED = sorted(BENTO_WHEELS.glob("llmops_template-*.whl"))
if PACKAGED:
    sys.path.insert(0, str(PACKAGED[-1]))

with bentoml.importing():
    import llmops
    from llmops.config.params import load_params
    from llmops.serve import api, logsink, routelabels, runtime, slowclients, wire
    from llmops.serve.requestlog import RequestLog
    from llmops.serve.telemetry import Telemetry

log = logging.getLogger("llmops.service")
logging.getLogger("llmops").setLevel(logging.INFO)  # BentoML's server shows WARNING and up
SERVE = load_params(Path(__file__).with_name("params.yaml")).serve


class Args(BaseModel):
    """Build arguments, kept in the Bento: `make bento` pins the model version it packaged,
    so a Bento serves that version, also after newer ones were imported (a rollback)."""

    model: str = ""  # empty (serving service.py in development): <serve.name>:latest


ARGS = bentoml.use_arguments(Args)
MODEL = bentoml.models.BentoModel(ARGS.model or f"{SERVE.name}:latest")
# LLMOPS_BATCHING=off answers one request at a time (the benchmark's baseline, bench-serve).
ROWS = SERVE.max_batch_size if os.environ.get("LLMOPS_BATCHING", "on") != "off" else 1
app = FastAPI(title="llmops", summary="The task endpoint and the OpenAI chat API")
# Before the server starts (this module is imported first): a deadline on slow clients'
# headers, and BentoML's request metrics labelled by route, never by a client's raw path.
slowclients.install(SERVE.timeouts)
routelabels.install(app, "/v1")


# runner_connection: BentoML's client of this service (in `api`) replaces its connection
# every 100 requests or 300 s by default, failing requests still on the old one; so it is
# kept (llmops.serve.wire.RemoteBackend also retries once on a dropped connection).
@bentoml.service(
    name="generator",
    workers=1,
    traffic={"timeout": 600},
    runner_connection={"max_requests": 1_000_000_000, "max_age": 1e9},
)
class Generator:
    model = MODEL

    def __init__(self) -> None:
        rows = bentoml.metrics.Histogram(
            name="llmops_decode_rows",
            documentation="Rows generated together per step",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
        )
        path = Path(self.model.path)
        self.worker = runtime.ModelThread(path, batch_size=ROWS, observe=rows.observe)

    @bentoml.api
    async def complete(self, items: list[dict]) -> list[dict]:
        return await wire.complete_wire(self.worker, items)

    @bentoml.api
    async def stream(self, item: dict) -> AsyncGenerator[str, None]:
        async for line in wire.stream_wire(self.worker, item):
            yield line


@bentoml.service(name="api", workers=1, traffic={"timeout": 600})
@bentoml.asgi_app(app, path="/v1")
class Api:
    generator = bentoml.depends(Generator)
    model = MODEL

    def __init__(self) -> None:
        log.info("llmops library: %s", Path(llmops.__file__).parent)
        key = os.environ.get(SERVE.api_key_env, "")
        if not key:
            log.warning("%s is not set: the API answers without authentication", SERVE.api_key_env)
        stored = self.model
        telemetry = Telemetry(bentoml.metrics)
        # The logs also go to an object store when serve.log_uri (or LLMOPS_LOG_URI) names one.
        uri = logsink.location(SERVE.log_uri)
        sink = logsink.LogSink(uri, SERVE.logs, telemetry) if uri else None
        if sink:
            log.info("request and feedback logs also go to %s", sink.shown)
        folder = Path(os.environ.get("LLMOPS_LOG_DIR", "logs"))
        self.requests = RequestLog(folder, SERVE.logs, sink=sink)
        context = api.ApiContext(
            package=runtime.Package.read(Path(stored.path)),
            backend=wire.RemoteBackend(self.generator),
            serve=SERVE,
            requests=self.requests,
            model=SERVE.name,
            version=str(stored.tag.version),
            api_key=key,
            telemetry=telemetry,
        )
        api.install(app, context)

    @bentoml.on_shutdown
    async def close_logs(self) -> None:
        """Write what the log sink holds (a bounded wait), off the event loop."""
        await asyncio.to_thread(self.requests.close)

    async def __is_ready__(self) -> bool:
        """Ready when the generator has loaded the model; never waits past timeouts.ready_s."""
        return await wire.ready(self.generator, SERVE.timeouts.ready_s)
