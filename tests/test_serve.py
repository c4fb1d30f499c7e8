"""`sentiment serve`: the HTTP API in-process (FastAPI's TestClient) and a real server process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from _reliability import assert_bad_input
from sentiment.serve import ServeSettings, create_app


@pytest.fixture(scope="module")
def client(trained_model: Path) -> TestClient:
    return TestClient(create_app(ServeSettings(str(trained_model), max_texts=5, max_bytes=2000)))


def test_predict_matches_the_cli_field_for_field(client: TestClient, cli, trained_model: Path) -> None:
    texts = ["a wonderful, gripping film", "boring and awful", "qwerty zxcv"]
    response = client.post("/predict", json={"texts": texts})
    assert response.status_code == 200
    cli_rows = [
        json.loads(line)
        for line in cli(["predict", "--model", trained_model, "--json", *texts]).stdout.splitlines()
    ]
    assert response.json() == {"predictions": cli_rows}
    assert [p["label"] for p in cli_rows] == ["positive", "negative", cli_rows[2]["label"]]
    assert cli_rows[2]["no_known_words"] is True
    one = client.post("/predict", json={"text": texts[0]}).json()
    assert one == {"predictions": cli_rows[:1]}


def test_explain_matches_the_cli(client: TestClient, cli, trained_model: Path) -> None:
    text = "a wonderful film, but a boring plot"
    response = client.post("/explain", json={"text": text})
    assert response.status_code == 200
    expected = json.loads(cli(["explain", "--model", trained_model, "--json", text]).stdout)
    assert response.json() == {"explanations": [expected]}
    negative = client.post("/explain", json={"text": text, "label": "negative"}).json()
    assert negative["explanations"][0]["explanation"]["label"] == "negative"


def test_health_model_docs_and_page(client: TestClient, trained_model: Path) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/model").json()
    metrics = json.loads((trained_model / "metrics.json").read_text())
    assert info["labels"] == ["negative", "positive"] and info["task"] == "binary"
    assert info["threshold"] == metrics["threshold"] and info["metrics"]["test"] == metrics["test"]
    assert info["config"]["model"]["hidden_dims"] == [8] and info["server_version"]
    spec = client.get("/openapi.json").json()
    assert {"/predict", "/explain", "/health", "/model"} <= set(spec["paths"])
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"texts", "text"} <= set(body["properties"])
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'fetch("/explain"' in page.text


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b'{"texts": ["a"', None, 400, "malformed JSON"),
        (b"", None, 400, "malformed JSON"),
        (b'{"text": "great \xff film"}', None, 400, "malformed JSON: invalid unicode"),
        (b'{"texts": ' + b"[" * 500 + b"]" * 500 + b"}", None, 400, "malformed JSON: recursion limit"),
        (b'{"text": 1e999}', None, 422, "'text' must be a string"),
        (b"texts=a", {"content-type": "application/x-www-form-urlencoded"}, 415, "unsupported media type"),
        (b'{"texts": ["a"]}', {"content-type": "text/plain"}, 415, "send application/json"),
        (b'["a"]', None, 422, "the body must be a JSON object"),
        (b'{"texts": "a"}', None, 422, "'texts' must be a list of strings"),
        (b'{"texts": ["a", 3]}', None, 422, "'texts.1' must be a string"),
        (b'{"texts": []}', None, 422, "'texts' is empty"),
        (b'{"texts": ["a", " "]}', None, 422, "'texts.1' is empty"),
        (b'{"text": null}', None, 422, "send exactly one of 'texts'"),
        (b"{}", None, 422, "send exactly one of 'texts'"),
        (b'{"texts": ["a"], "text": "b"}', None, 422, "send exactly one of 'texts'"),
        (b'{"txts": ["a"]}', None, 422, "unknown field 'txts'"),
        (b'{"texts": ["a"], "label": "positive"}', None, 422, "'label' goes with /explain"),
        (json.dumps({"texts": ["a"] * 6}).encode(), None, 413, "6 texts in one request: the limit is 5"),
        (json.dumps({"text": "a" * 3000}).encode(), None, 413, "over the limit of 2000 bytes"),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_problem(
    client: TestClient, body: bytes, headers: dict | None, status: int, message: str
) -> None:
    response = client.post("/predict", content=body, headers=headers or {"content-type": "application/json"})
    assert response.status_code == status
    assert message in response.json()["error"]


def test_a_byte_order_mark_is_allowed(client: TestClient) -> None:
    response = client.post(
        "/predict", content=b'\xef\xbb\xbf{"text": "great"}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 200 and response.json()["predictions"][0]["text"] == "great"


def test_other_4xx_are_json_too(client: TestClient) -> None:
    assert client.get("/nope").json() == {"error": "Not Found"}
    assert client.get("/predict").status_code == 405 and "error" in client.get("/predict").json()
    bad_label = client.post("/explain", json={"text": "good", "label": "meh"})
    assert bad_label.status_code == 422 and "unknown label 'meh'" in bad_label.json()["error"]


def test_a_streamed_body_over_the_limit_is_413(client: TestClient) -> None:
    def chunks():
        yield b'{"text": "'
        for _ in range(30):
            yield b"a" * 100
        yield b'"}'

    response = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "over the limit" in response.json()["error"]


def test_a_client_that_disconnects_mid_body_is_no_server_error(trained_model: Path) -> None:
    """A client gone half way through its body: answered 400 (to no one), not a 500 whose traceback uvicorn
    logs as "Exception in ASGI application"."""
    import asyncio

    app = create_app(ServeSettings(str(trained_model)))
    messages = iter(
        [{"type": "http.request", "body": b'{"text": "go', "more_body": True}, {"type": "http.disconnect"}]
    )
    sent: list[dict] = []

    async def receive() -> dict:
        return next(messages)

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(app(scope, receive, send))  # raised ClientDisconnect (the server logged its traceback)
    assert sent[0]["status"] == 400
    assert b"disconnected" in b"".join(m.get("body", b"") for m in sent[1:])


def test_requests_waiting_together_are_predicted_in_one_call(trained_model: Path) -> None:
    """16 concurrent clients, one text each: fewer predict calls than requests, each request its own
    predictions, equal to one call per text; a failing call answers every request waiting on it with a 500."""
    import asyncio

    import httpx

    from sentiment.predictor import Predictor

    app = create_app(ServeSettings(str(trained_model)))
    calls: list[int] = []
    real = Predictor.predict_proba

    def counted(self: Predictor, texts, batch_size: int = 512, workers: int = 1):
        calls.append(len(texts))
        return real(self, texts, batch_size, workers)

    texts = [
        f"review {i}: a {'wonderful' if i % 2 else 'boring'} film, {'great' * (i % 3)}" for i in range(16)
    ]

    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # as a server: a 500
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await asyncio.gather(*(client.post("/predict", json={"text": t}) for t in texts))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Predictor, "predict_proba", counted)
        responses = asyncio.run(send_all())
    assert sum(calls) == 16 and len(calls) < 16  # batched
    single = Predictor.load(trained_model)
    for text, response in zip(texts, responses, strict=True):
        assert response.status_code == 200
        assert response.json() == {"predictions": [single.predict([text])[0].to_dict()]}

    def broken(self: Predictor, texts, batch_size: int = 512, workers: int = 1):
        raise RuntimeError("boom")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Predictor, "predict_proba", broken)
        failed = asyncio.run(send_all())
    assert {r.status_code for r in failed} == {500}
    assert all(r.json() == {"error": "internal error: RuntimeError"} for r in failed)


def test_large_calls_run_in_threads_and_answer_as_one_call_each(trained_model: Path) -> None:
    """``threads`` 2: calls of 64 texts or more run in the thread pool, smaller ones in the event loop;
    every request still gets exactly its own texts' predictions."""
    import asyncio
    import threading

    import httpx

    from sentiment.predictor import Predictor

    app = create_app(ServeSettings(str(trained_model), threads=2))
    where: list[tuple[int, str]] = []
    real = Predictor.predict_proba

    def recorded(self: Predictor, texts, batch_size: int = 512, workers: int = 1):
        where.append((len(texts), threading.current_thread().name))
        return real(self, texts, batch_size, workers)

    batches = [
        [f"review {b}.{i}: {'a wonderful' if (b + i) % 2 else 'a dull'} film" for i in range(100)]
        for b in range(4)
    ]
    short = ["one short review, alone"]

    async def send_all() -> tuple[list[httpx.Response], httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            many = await asyncio.gather(*(client.post("/predict", json={"texts": b}) for b in batches))
            return many, await client.post("/predict", json={"texts": short})

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Predictor, "predict_proba", recorded)
        responses, alone = asyncio.run(send_all())
    single = Predictor.load(trained_model)
    for texts, response in zip([*batches, short], [*responses, alone], strict=True):
        assert response.status_code == 200
        assert response.json() == {"predictions": [p.to_dict() for p in single.predict(texts)]}
    assert sum(n for n, _ in where) == 401
    assert all(name.startswith("predict") for n, name in where if n >= 64)  # the pool's threads
    assert where[-1] == (1, threading.main_thread().name)  # the event loop's


def test_predict_dicts_are_the_predictions_json(trained_model: Path) -> None:
    """The server's answer rows, made without ``Prediction`` objects, are ``predict --json``'s rows."""
    from sentiment.predictor import Predictor

    predictor = Predictor.load(trained_model)
    texts = ["a wonderful, moving film", "dull and boring", "zzzz qqqq", "great"] * 5
    expected = [p.to_dict() for p in predictor.predict(texts)]
    assert predictor.predict_dicts(texts) == expected
    assert any(row["no_known_words"] for row in expected) and len({row["label"] for row in expected}) == 2


def test_a_missing_or_broken_model_refuses_to_start(cli, tmp_path: Path, trained_model: Path) -> None:
    """Exit 2 with the error line alone (the "serving ..." line came first, before the model was loaded)."""
    assert_bad_input(cli(["serve", "--model", tmp_path / "nothing", "--port", "0"]), "nothing")
    broken = tmp_path / "broken"
    shutil.copytree(trained_model, broken)
    (broken / "model.safetensors").write_bytes(b"not a tensor file")
    assert_bad_input(cli(["serve", "--model", broken, "--port", "0"]), "model.safetensors")


# -- a real server process --


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, payload: dict, timeout: float = 60) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, json.dumps(payload).encode(), {"content-type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def start_server(model: Path, *args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "sentiment", "serve", "--model", str(model), "--port", str(port), *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode}: {proc.stderr.read()}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                if response.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("the server did not come up in 60 s")


def _unchunk(data: bytes) -> bytes:
    out, rest = [], data
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2 :]
    return b"".join(out)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_finishes_the_requests_in_flight_then_exits_0(trained_model: Path, workers: int) -> None:
    proc, url = start_server(
        trained_model, "--workers", str(workers), "--max-texts", "100000", "--max-bytes", "100000000"
    )
    try:
        assert post(f"{url}/predict", {"text": "great"})[0] == 200
        texts = ["a wonderful gripping film, superb acting and a moving story " * 20] * 20000
        body = json.dumps({"texts": texts}).encode()
        head = "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
            # sendall returns once the kernel holds the rest: the server has read nearly all of the 24 MB, so
            # the request is in flight (not merely queued) when the signal comes, however busy the machine
            sock.sendall(head.encode() + body)
            proc.send_signal(signal.SIGTERM)
            chunks = []
            while chunk := sock.recv(1 << 20):
                chunks.append(chunk)
        response = b"".join(chunks)
        status, _, rest = response.partition(b"\r\n")
        assert status.startswith(b"HTTP/1.1 200"), response[:300]
        payload = rest.partition(b"\r\n\r\n")[2]
        if b"transfer-encoding: chunked" in rest.partition(b"\r\n\r\n")[0].lower():
            payload = _unchunk(payload)
        assert len(json.loads(payload)["predictions"]) == 20000
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_load_script_reports_throughput_and_latency(trained_model: Path) -> None:
    pytest.importorskip("aiohttp")
    script = Path(__file__).resolve().parents[1] / "scripts" / "load_test.py"
    command = [sys.executable, str(script), "--model", str(trained_model), "--json", "--requests", "200"]
    # the request counts end each phase, not the clock: a busy CI machine cannot cut a phase short
    command += ["--batch-requests", "4", "--batch-size", "50", "--seconds", "120", "--clients", "4"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    single, batch = json.loads(result.stdout)
    assert single["phase"] == "single" and single["requests"] == 200 and single["failed"] == 0
    assert batch["texts"] == 200 and batch["failed"] == 0
    assert 0 < single["p50_ms"] <= single["p99_ms"] and single["requests_per_s"] > 0


def test_rounded_is_pythons_round() -> None:
    """``predictor.rounded`` (NumPy) gives ``round(v, 6)``'s floats, including values at and next to a half
    in the sixth place, where rounding the scaled product could go the other way, and huge ones."""
    from sentiment.predictor import rounded

    rng = np.random.default_rng(0)
    halves = (np.arange(200_000) + 0.5) / 1e6
    values = np.concatenate(
        [
            rng.random(200_000),
            halves,
            np.nextafter(halves, 1),
            np.nextafter(halves, 0),
            [0.0, 1.0, 0.5, 5e-7, 1.5e-6, 0.9999995, 1 - 1e-17, 1e300, -2.5e-6, np.inf, -np.inf],
        ]
    )
    for v in (values, 1.0 - values):
        got, want = rounded(v), [round(x, 6) for x in v.tolist()]
        assert got == want
        assert [np.float64(x).tobytes() for x in got] == [np.float64(x).tobytes() for x in want]  # -0.0
    assert rounded(np.array([0.1234565, 0.5])) == [round(0.1234565, 6), 0.5]  # few: round itself
