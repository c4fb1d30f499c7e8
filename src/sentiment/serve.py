"""``sentiment serve``: a trained model behind an HTTP API (FastAPI on uvicorn) and a page to try it.

Routes: ``POST /predict`` and ``POST /explain`` take ``{"texts": [...]}`` or ``{"text": "..."}`` and answer
one object per text, field for field what ``predict --json`` / ``explain --json`` print; ``GET /health``;
``GET /model`` (labels, thresholds, config, test metrics, version); ``GET /`` the page; ``/docs`` and
``/openapi.json`` the OpenAPI description.

Every bad request is a 4xx with ``{"error": "..."}`` naming the problem: malformed JSON (400), a body that
is not JSON (415), too many bytes or texts (413), wrong or missing fields, an empty list or text (422).
The model is loaded once per worker process, when the app is made: a missing or broken model directory
stops the server before it listens.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from sentiment import __version__
from sentiment.explain import explain
from sentiment.predictor import Predictor
from sentiment.text import NGRAM_TABLES_MIN_TEXTS

# the environment carries the settings to uvicorn's worker processes, which import the app by name
ENV_SETTINGS = "SENTIMENT_SERVE_SETTINGS"
PAGE = Path(__file__).with_name("page.html")
APP = "sentiment.serve:app_from_env"  # what uvicorn imports in each worker


@dataclass(frozen=True)
class ServeSettings:
    model_dir: str
    max_texts: int = 1000  # texts in one request
    max_bytes: int = 1_000_000  # bytes in one request body
    threads: int = 1  # prediction calls at once per process (Batcher)

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeSettings:
        raw = os.environ.get(ENV_SETTINGS)
        if not raw:
            raise RuntimeError(f"{ENV_SETTINGS} is not set: start the server with `sentiment serve`")
        return cls(**json.loads(raw))


class TextsRequest(BaseModel):
    """``{"texts": ["...", ...]}`` or ``{"text": "..."}``; ``label`` (explain only): the label to explain."""

    model_config = ConfigDict(extra="forbid", strict=True)
    texts: list[str] | None = None
    text: str | None = None
    label: str | None = None


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _json(data: Any) -> Response:
    # orjson: UTF-8 out, as json.dumps(ensure_ascii=False) then encode, in a fortieth of the time (a
    # response of 500 predictions echoes 500 texts). No text holds a lone surrogate: the parser refuses them.
    return Response(orjson.dumps(data), media_type="application/json")


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it passes ``limit`` bytes, declared or streamed."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, f"request body of {int(declared)} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BadRequest(413, f"request body is over the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:  # an ordinary event, not a server error: no 500 and no traceback in the log
        raise BadRequest(400, "the client disconnected before sending the whole body") from None
    return b"".join(chunks)


def _describe(exc: ValidationError) -> tuple[int, str]:
    """One line naming the first problem of a request body, and its status (400 for JSON that does not
    parse, 422 for JSON of the wrong shape)."""
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    if first["type"] == "json_invalid":
        return 400, f"malformed JSON: {first['msg'].removeprefix('Invalid JSON: ')}"
    if first["type"] == "extra_forbidden":
        return 422, f"unknown field '{where}': send 'texts' (a list of strings) or 'text' (a string)"
    if first["type"] == "model_type":
        return 422, 'the body must be a JSON object: {"texts": ["..."]} or {"text": "..."}'
    loc = first["loc"]
    if first["type"].endswith("_type") and loc:
        wanted = "a list of strings" if loc == ("texts",) else "a string"
        return 422, f"'{where}' must be {wanted}"
    return 422, f"'{where}': {first['msg'].lower()}"


async def _texts(request: Request, settings: ServeSettings) -> tuple[list[str], str | None]:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise BadRequest(415, f"unsupported media type '{content_type or 'none'}': send application/json")
    # a UTF-8 byte-order mark before the JSON is allowed (RFC 8259 lets a parser ignore it; editors add it)
    body = (await _read_body(request, settings.max_bytes)).removeprefix(b"\xef\xbb\xbf")
    try:
        payload = TextsRequest.model_validate_json(body)
    except ValidationError as exc:
        raise BadRequest(*_describe(exc)) from None
    if (payload.texts is None) == (payload.text is None):
        raise BadRequest(422, "send exactly one of 'texts' (a list of strings) and 'text' (a string)")
    texts = payload.texts if payload.texts is not None else [payload.text]
    if not texts:
        raise BadRequest(422, "'texts' is empty: send at least one text")
    if len(texts) > settings.max_texts:
        raise BadRequest(413, f"{len(texts)} texts in one request: the limit is {settings.max_texts}")
    for i, text in enumerate(texts):
        if not text or text.isspace():  # (strip() would copy every text)
            where = f"texts.{i}" if payload.texts is not None else "text"
            raise BadRequest(422, f"'{where}' is empty: an empty text cannot be classified")
    return texts, payload.label


# Calls of fewer texts run in the event loop even with threads: a few texts cost mostly Python that holds the
# GIL, so a thread overlaps little of it and the hand-over costs more (16 single-text clients, alternated,
# the kernels taking every call: every call in a thread 1,391 / 1,296 req/s, p99 22.7 / 25.1 ms; calls
# under 64 texts in the loop 2,128 / 1,994 req/s, p99 12.9 / 14.8 ms)
THREAD_MIN_TEXTS = 64
# a request's texts and the future its answer goes to
Waiting = tuple[list[str], asyncio.Future[list[dict[str, Any]]]]


class Batcher:
    """Requests that are waiting together are predicted in one call. While a call runs, other requests
    arrive and queue here; the next call takes them all. A call has a fixed cost of NumPy calls (one review
    alone: ~0.3 ms), so 16 clients sending one text each are served much faster in one batch; an idle server
    adds no wait. Each request gets the answer one call of its own would give (tested): a text is pooled on
    its own, and the float rounding that a larger call's summing may change (at most 2e-16 over 500 reviews)
    is below the 6 decimals answered.

    ``threads`` > 1: up to that many calls run at once, in threads, and the event loop goes on reading and
    answering requests meanwhile. The compiled kernels (``sentiment.kernels``) release the GIL, so one process
    keeps several cores busy, however the kernel spread the connections over the processes. With one thread,
    or under ``THREAD_MIN_TEXTS`` texts, the call runs in the event loop itself (no hand-over to a thread)."""

    def __init__(self, predictor: Predictor, threads: int = 1) -> None:
        self.predictor = predictor
        self.threads = max(threads, 1)
        self.running = 0
        self.waiting: list[Waiting] = []
        self.executor = ThreadPoolExecutor(self.threads, "predict") if self.threads > 1 else None

    async def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        """Each text's prediction as ``predict --json`` prints it (``Predictor.predict_dicts``)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[dict[str, Any]]] = loop.create_future()
        if not self.waiting and self.running < self.threads:
            loop.call_soon(self._start)  # after the requests the loop already has in hand
        self.waiting.append((texts, future))
        return await future

    def _start(self) -> None:
        if not self.waiting or self.running >= self.threads:
            return  # taken by an earlier call, or a call that ends will take them
        waiting, self.waiting = self.waiting, []
        texts = [text for batch, _ in waiting for text in batch]
        if self.executor is None or len(texts) < THREAD_MIN_TEXTS:
            try:
                self._answer(waiting, self.predictor.predict_dicts(texts))
            except Exception as exc:  # each request answers it (a 500 naming the type)
                self._fail(waiting, exc)
            return
        self.running += 1
        call = asyncio.get_running_loop().run_in_executor(self.executor, self.predictor.predict_dicts, texts)
        call.add_done_callback(lambda done: self._done(waiting, done))

    def _done(self, waiting: list[Waiting], done: asyncio.Future[list[dict[str, Any]]]) -> None:
        self.running -= 1
        if done.cancelled():  # the loop is closing
            self._fail(waiting, asyncio.CancelledError())
        elif done.exception() is not None:
            self._fail(waiting, done.exception())
        else:
            self._answer(waiting, done.result())
        self._start()  # the requests that queued meanwhile

    @staticmethod
    def _answer(waiting: list[Waiting], predictions: list[dict[str, Any]]) -> None:
        start = 0
        for texts, future in waiting:
            if not future.done():  # a client that went away: its request was cancelled
                future.set_result(predictions[start : start + len(texts)])
            start += len(texts)

    @staticmethod
    def _fail(waiting: list[Waiting], exc: BaseException) -> None:
        for _, future in waiting:
            if not future.done():
                future.set_exception(exc)


def model_info(predictor: Predictor) -> dict[str, Any]:
    """What ``GET /model`` answers: enough to know which model is behind the server and how good it is."""
    from sentiment.modeldir import load_config, read_metrics

    meta, model_dir = predictor.meta, predictor.model_dir
    metrics: dict[str, Any] = {}
    if model_dir is not None and (model_dir / "metrics.json").is_file():
        # checked as `sentiment report` checks it: a damaged file stops the start in one line, not a traceback
        metrics = read_metrics(model_dir, predictor.labels)
    return {
        "model_dir": str(model_dir.resolve()) if model_dir is not None else None,
        "labels": predictor.labels,
        "task": meta.task or ("binary" if len(predictor.labels) == 2 else "multiclass"),
        "threshold": predictor.threshold if meta.task in (None, "binary") else None,
        "thresholds": dict(zip(predictor.labels, predictor.thresholds, strict=True))
        if predictor.multilabel
        else None,
        "created": meta.created,
        "format_version": meta.format_version,
        "trained_with": meta.sentiment_version,
        "server_version": __version__,
        "metrics": {"test": metrics.get("test"), "validation": metrics.get("validation")},
        "config": load_config(model_dir).to_dict() if model_dir is not None else None,
    }


def create_app(settings: ServeSettings) -> FastAPI:
    """The app for one model directory (loaded now: a broken one raises ``ModelDirError`` here)."""
    predictor = Predictor.load(settings.model_dir)
    # A server encodes many texts over its life, a few per request: build the n-gram look-up once, now.
    predictor.expect(NGRAM_TABLES_MIN_TEXTS)
    info, batcher = model_info(predictor), Batcher(predictor, settings.threads)
    page = PAGE.read_text(encoding="utf-8")
    app = FastAPI(
        title="sentiment",
        version=__version__,
        description="Text-sentiment predictions and explanations from one trained model.",
    )

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, str(exc.errors()[0].get("msg", "invalid request")))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # never a traceback to the client; the server's log still has it
        return _error(500, f"internal error: {type(exc).__name__}")

    body_doc = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": TextsRequest.model_json_schema()}},
        }
    }

    @app.post("/predict", openapi_extra=body_doc, summary="Label and probabilities of each text")
    async def predict(request: Request) -> Response:
        texts, label = await _texts(request, settings)
        if label is not None:
            raise BadRequest(422, "'label' goes with /explain")
        return _json({"predictions": await batcher.predict(texts)})

    @app.post("/explain", openapi_extra=body_doc, summary="Predictions with each word's weight (occlusion)")
    async def explain_texts(request: Request) -> Response:
        texts, label = await _texts(request, settings)
        if label is not None and label not in predictor.labels:
            raise BadRequest(422, f"unknown label '{label}': the model's labels are {predictor.labels}")
        return _json({"explanations": [e.to_dict() for e in explain(predictor, texts, label)]})

    @app.get("/health", summary="Liveness")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/model", summary="The model behind the server")
    async def model() -> dict[str, Any]:
        return info

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    return app


def app_from_env() -> FastAPI:
    """uvicorn's factory in each worker process (``sentiment serve`` sets the environment)."""
    return create_app(ServeSettings.from_env())


def run(
    settings: ServeSettings,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    ready: Callable[[], None] | None = None,
) -> None:
    """Serve until SIGINT / SIGTERM; both finish the requests in flight, then return (exit status 0).
    ``ready`` is called once the model has loaded, before the server binds."""
    import uvicorn

    app = create_app(settings)  # fails here, before binding, on a missing or broken model directory
    if ready is not None:
        ready()
    options = {
        "host": host,
        "port": port,
        "log_level": "warning",
        "access_log": False,  # a line per request costs more than a prediction
        "timeout_graceful_shutdown": 30,
    }
    # One process serves the app just made; several import it by name (each loads the model once)
    server = uvicorn.Server(uvicorn.Config(app, **options))

    def stop(signum: int, frame: object) -> None:
        # Before uvicorn takes the signals: stop as soon as it has started. After it gives them back, it
        # raises the signal it shut down for again, to die by it; a stop asked for and done is a success.
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if workers > 1:
            # uvicorn's own supervisor: SIGTERM reaches every worker, each finishes its requests in flight
            os.environ[ENV_SETTINGS] = settings.to_env()
            uvicorn.run(APP, factory=True, workers=workers, **options)
        else:
            server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
