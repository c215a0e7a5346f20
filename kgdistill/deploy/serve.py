"""The HTTP server of an exported model: FastAPI on uvicorn, stateless (every replica loads the same folder).

``/v1/predict`` and ``/v1/concepts/{id}`` need a bearer token; ``/healthz``, ``/readyz``, ``/metrics`` and the
OpenAPI description (``/openapi.json``, ``/docs``) do not (probes and scrapers stay inside the cluster).  Every
request is logged as one JSON line with its id, sizes, status and timing; never a body, a header or a token."""
from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
import uuid
from functools import partial
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import DataError
from .auth import authorised
from .batching import Batcher
from .metrics import ServeMetrics
from .onnx_model import ExportedModel
from .requests import Limits, PredictRequest, Rejected, check_request, parse_json

log = logging.getLogger("kgdistill.serve")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"ts": round(record.created, 3), "level": record.levelname.lower(),
                           "event": record.getMessage(), **getattr(record, "fields", {})})


def setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


def create_app(model: ExportedModel, tokens: list[bytes], limits: Limits = Limits()) -> FastAPI:
    metrics = ServeMetrics(model.version, model.manifest["method"], model.kind, model.validation_range)
    app = FastAPI(title="kgdistill model server", version=model.version,
                  description=f"{model.kind} student {model.manifest['method']} over {len(model.candidates)} "
                              "candidate concepts.")
    app.state.ready = False
    bearer = HTTPBearer(auto_error=False, description="A token from KGDISTILL_TOKENS or --token-file.")

    def require_token(request: Request, _=Depends(bearer)) -> None:
        if not authorised(request.headers.get("authorization"), tokens):
            raise Rejected(401, "auth", "missing or invalid bearer token")

    batcher = Batcher(model.predict, limits.max_batch, limits.max_inflight, metrics.model_batch.observe)
    _add_handlers(app, metrics)
    _add_routes(app, model, metrics, limits, require_token, batcher)
    app.router.add_event_handler("startup", lambda: _warm_up(app, model))
    app.router.add_event_handler("shutdown", partial(_shutdown, app, batcher))
    return app


def _warm_up(app: FastAPI, model: ExportedModel) -> None:
    """One inference before reporting ready, so the first request does not pay for session set-up."""
    import numpy as np

    if model.kind == "text":
        model.predict(["Warm-up."], 1)
    else:
        model.predict(np.zeros((1, *[8 if n is None else n for n in model.inputs["shape"]]), np.float32), 1)
    app.state.ready = True
    log.info("ready", extra={"fields": {"model": model.version}})


async def _shutdown(app: FastAPI, batcher: Batcher) -> None:
    """After uvicorn has answered the requests in flight."""
    app.state.ready = False
    await batcher.close()
    log.info("shutdown", extra={"fields": {}})


def _add_routes(app: FastAPI, model: ExportedModel, metrics: ServeMetrics, limits: Limits, require_token,
                batcher: Batcher) -> None:
    schema = {"requestBody": {"required": True, "content": {"application/json": {
        "schema": PredictRequest.model_json_schema()}}}}

    @app.post("/v1/predict", dependencies=[Depends(require_token)], openapi_extra=schema,
              summary="Ranked concepts with scores (text: and the graph evidence) for a batch of inputs")
    async def predict(request: Request) -> dict[str, Any]:
        payload = parse_json(await _body(request, limits))
        req, inputs = check_request(payload, model.kind, limits)
        request.state.batch = len(req.inputs)
        try:
            ranked, best = await asyncio.wait_for(batcher.submit(inputs, req.top_k), limits.timeout_s)
        except asyncio.TimeoutError:
            raise Rejected(504, "timeout", f"scoring took longer than {limits.timeout_s:g} s") from None
        except DataError as exc:
            raise Rejected(422, "validation", str(exc), "inputs") from None
        metrics.observe_scores(best)
        return {"model": model.version, "results": [[r.__dict__ for r in rs] for rs in ranked]}

    @app.get("/v1/concepts/{concept_id}", dependencies=[Depends(require_token)], summary="One candidate concept")
    async def concept(concept_id: str) -> dict[str, Any]:
        i = model.index.get(concept_id)
        if i is None:
            raise Rejected(404, "not_found", "no candidate concept with this id", "concept_id")
        c = model.concepts[i]
        return {"id": c["id"], "name": c["name"], "seen": c["seen"], "index": i,
                "linked_findings": [model.findings[j] for j in c.get("evidence", [])]}

    @app.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: the model is loaded and warmed up")
    async def readyz():
        if not app.state.ready:
            return JSONResponse({"ready": False}, status_code=503)
        return {"ready": True, "model": model.version}

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")


async def _body(request: Request, limits: Limits) -> bytes:
    """The request body, refused past the size limit (413) or when it does not arrive in time (408)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise Rejected(413, "body_too_large", f"body of {declared} bytes; at most {limits.max_body_bytes}")

    async def read() -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise Rejected(413, "body_too_large", f"body over {limits.max_body_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        return await asyncio.wait_for(read(), limits.timeout_s)
    except asyncio.TimeoutError:
        raise Rejected(408, "timeout", f"request body not received within {limits.timeout_s:g} s") from None


def _add_handlers(app: FastAPI, metrics: ServeMetrics) -> None:
    def reply(request: Request, exc: Rejected) -> JSONResponse:
        metrics.errors.labels(exc.kind).inc()
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    @app.exception_handler(Rejected)
    async def rejected(request: Request, exc: Rejected):
        return reply(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        return reply(request, Rejected(422, "validation", f"{field}: {err['msg']}", field))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return reply(request, Rejected(exc.status_code, "not_found" if exc.status_code == 404 else "http",
                                       str(exc.detail)))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):
        log.error("internal_error", extra={"fields": {"request_id": getattr(request.state, "request_id", None),
                                                      "type": type(exc).__name__}})
        return reply(request, Rejected(500, "internal", "internal error"))

    @app.middleware("http")
    async def observe(request: Request, call_next):
        rid = request.headers.get("x-request-id", "")
        request.state.request_id = rid if REQUEST_ID.match(rid) else uuid.uuid4().hex
        start = time.perf_counter()
        response = await call_next(request)
        seconds = time.perf_counter() - start
        route = request.scope.get("route")
        endpoint = route.path if route is not None else "other"
        metrics.observe_request(endpoint, response.status_code, seconds)
        response.headers["X-Request-ID"] = request.state.request_id
        log.info("request", extra={"fields": {
            "request_id": request.state.request_id, "method": request.method, "endpoint": endpoint,
            "status": response.status_code, "bytes_in": int(request.headers.get("content-length") or 0),
            "bytes_out": int(response.headers.get("content-length") or 0),
            "batch": getattr(request.state, "batch", None), "ms": round(seconds * 1000, 2)}})
        return response


SETTINGS_ENV = "KGDISTILL_SERVE_SETTINGS"   # how the parent hands its settings to uvicorn's worker processes


def app_from_env() -> FastAPI:
    """uvicorn's app factory (``--workers N`` starts it in each worker process)."""
    import os

    from .auth import load_tokens

    s = json.loads(os.environ[SETTINGS_ENV])
    setup_logging()
    model = ExportedModel(s["folder"], threads=s.get("threads"))
    return create_app(model, load_tokens(s.get("token_file")), Limits(**s["limits"]))


def run_server(folder: str, *, host: str, port: int, workers: int, token_file: str | None, limits: Limits,
               threads: int | None = None) -> None:
    """Check the tokens and the model folder here (one clear line, exit 2), then hand over to uvicorn, which
    stops on SIGTERM/SIGINT after finishing the requests in flight (up to 30 s)."""
    import os
    from dataclasses import asdict

    import uvicorn

    from .artefact import read_manifest
    from .auth import load_tokens

    load_tokens(token_file)
    read_manifest(folder)
    os.environ[SETTINGS_ENV] = json.dumps({"folder": str(folder), "token_file": token_file, "threads": threads,
                                           "limits": asdict(limits)})
    setup_logging()
    logging.getLogger("uvicorn.error").handlers[:] = log.handlers
    logging.getLogger("uvicorn.error").setLevel(logging.INFO)
    uvicorn.run("kgdistill.deploy.serve:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_config=None, access_log=False, timeout_graceful_shutdown=30, server_header=False)
