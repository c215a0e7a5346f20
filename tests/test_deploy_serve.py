"""kgdistill serve, as a real server process spoken to over HTTP (httpx, and a raw socket for slow clients):
authentication, limits, validation, metrics, logs without bodies or tokens, graceful shutdown."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deploy_fixtures import sensor_export, sensor_run, text_export  # noqa: E402,F401 - fixtures

TOKEN = "t0ken-for-tests-" + "x" * 16
NOTE = "Examination revealed central diabetes insipidus. Parents report short nose. Marker zebra-quokka-17."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, folder: Path, tmp: Path, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (tmp / "tokens.txt").write_text(f"# test tokens\n{TOKEN}\n")
        self.log = tmp / "server.log"
        env = {k: v for k, v in os.environ.items() if k != "KGDISTILL_TOKENS"} | {"OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "kgdistill", "serve", str(folder), "--port",
                                      str(self.port), "--token-file", str(tmp / "tokens.txt"), *extra],
                                     stdout=self.log.open("w"), stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise AssertionError("server did not become ready:\n" + self.log.read_text())

    def post(self, body, token: str | None = TOKEN, headers: dict | None = None, **kw) -> httpx.Response:
        headers = (headers or {}) | ({"Authorization": f"Bearer {token}"} if token else {})
        if isinstance(body, (bytes, str)):
            return httpx.post(self.url + "/v1/predict", content=body, headers=headers, timeout=60, **kw)
        return httpx.post(self.url + "/v1/predict", json=body, headers=headers, timeout=60, **kw)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def server(text_export, tmp_path_factory):
    s = Server(text_export, tmp_path_factory.mktemp("serve"), "--max-body-bytes", "20000", "--max-batch", "8",
               "--max-input-length", "2000", "--timeout", "2")
    yield s
    if s.proc.poll() is None:
        s.stop()


def read_reply(sock: socket.socket) -> str:
    """One whole HTTP response (head and Content-Length body), however the server's segments arrive."""
    sock.settimeout(60)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
    while len(body) < int(lengths[0]):
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside the body"
        body += chunk
    return (head + b"\r\n\r\n" + body).decode()


def metric(server: Server, name: str) -> float:
    text = httpx.get(server.url + "/metrics").text
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " ")
              or line.startswith(name + "{")]
    return sum(values)


def test_predict_ranks_like_the_exported_model(server, text_export):
    from kgdistill.deploy.onnx_model import ExportedModel

    r = server.post({"inputs": [NOTE, "Seizures."], "top_k": 3})
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"]
    want, _ = ExportedModel(text_export).predict([NOTE, "Seizures."], 3)
    got = r.json()["results"]
    assert [[c["concept_id"] for c in res] for res in got] == [[w.concept_id for w in res] for res in want]
    assert got[0][0]["score"] == pytest.approx(want[0][0].score, abs=1e-5)
    assert got[0][0]["name"] == want[0][0].name and got[0][0]["evidence"] == want[0][0].evidence


ISSUE_16_NOTE = ("The child has seizures and global developmental delay. MRI showed cerebellar hypoplasia. "
                 "No hearing loss.")


def test_negated_sentences_are_evidence_against_never_support(server, tiny_run, text_export):
    """A finding the note denies is cited against the concepts linked to it, as ``kgdistill predict`` does; a
    relative's finding is cited neither way."""
    from kgdistill.predict import Predictor

    concepts = json.loads((text_export / "concepts.json").read_text())
    c = next(c for c in concepts["candidates"] if c["evidence"])
    finding = concepts["findings"][c["evidence"][0]]["name"]
    denied, relative = f"No {finding.lower()}.", f"His brother has {finding.lower()}."
    notes = [ISSUE_16_NOTE, f"{finding}. {denied} {relative}"]
    r = server.post({"inputs": notes, "top_k": 12})
    assert r.status_code == 200, r.text
    got = r.json()["results"]
    cited = [(e["text"], e["against"]) for res in got for c in res for e in c["evidence"]]
    assert ("No hearing loss.", False) not in cited and (denied, False) not in cited
    assert (denied, True) in cited and (finding + ".", False) in cited
    assert all(text != relative for text, _ in cited)
    want = Predictor.from_run_dir(tiny_run).predict_texts(notes, 12)
    assert [[(c["concept_id"], [(e["text"], e["finding_id"], e["against"]) for e in c["evidence"]]) for c in res]
            for res in got] == [[(w.concept_id, [(e.text, e.finding_id, e.against) for e in w.evidence]) for w in res]
                                for res in want]


@pytest.mark.parametrize("token", [None, "wrong-token-" + "y" * 20, TOKEN + "x", TOKEN[:-1]])
def test_no_token_or_a_wrong_one_is_401(server, token):
    r = server.post({"inputs": [NOTE]}, token=token)
    assert r.status_code == 401 and r.json() == {"error": "auth", "message": "missing or invalid bearer token"}
    assert r.headers["www-authenticate"] == "Bearer"
    r = httpx.post(server.url + "/v1/predict", json={"inputs": [NOTE]}, headers={"Authorization": f"Basic {TOKEN}"})
    assert r.status_code == 401


@pytest.mark.parametrize("body,status,kind,field", [
    (b'{"inputs": ["a note"', 422, "validation", "body"),
    (b"", 422, "validation", "body"),
    (b"[1, 2]", 422, "validation", "body"),
    ({"notes": [NOTE]}, 422, "validation", "inputs"),
    ({"inputs": [NOTE], "top_k": 0}, 422, "validation", "top_k"),
    ({"inputs": [NOTE], "top_k": "many"}, 422, "validation", "top_k"),
    ({"inputs": [[0.1, 0.2, 0.3]]}, 422, "wrong_modality", "inputs[0]"),
    ({"inputs": [NOTE, 7]}, 422, "wrong_modality", "inputs[1]"),
    ({"inputs": []}, 422, "empty_batch", "inputs"),
    ({"inputs": ["   "]}, 422, "validation", "inputs[0]"),
    ({"inputs": [NOTE] * 9}, 413, "batch_too_large", "inputs"),
    ({"inputs": ["word " * 500]}, 413, "input_too_long", "inputs[0]"),
])
def test_bad_requests_get_their_status_and_name_the_field(server, body, status, kind, field):
    r = server.post(body)
    assert r.status_code == status, r.text
    assert r.json()["error"] == kind and r.json()["field"] == field
    assert NOTE not in r.text and "a note" not in r.text   # never echoes the body


def test_oversized_bodies_are_413_declared_or_streamed(server):
    big = json.dumps({"inputs": ["x" * 30000]}).encode()
    r = server.post(big)
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"
    r = server.post(None, content=(big[i:i + 4096] for i in range(0, len(big), 4096)))
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"


def test_a_slow_client_times_out_while_others_are_served(server):
    body = json.dumps({"inputs": [NOTE]}).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: "
                  + f"Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body[:10])
        assert server.post({"inputs": [NOTE]}).status_code == 200   # served while the slow one hangs
        reply = read_reply(s)
    assert reply.startswith("HTTP/1.1 408") and '"error":"timeout"' in reply


def test_concept_lookup(server, text_export):
    concepts = json.loads((text_export / "concepts.json").read_text())
    c = concepts["candidates"][3]
    r = httpx.get(f"{server.url}/v1/concepts/{c['id']}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    assert r.json()["name"] == c["name"] and r.json()["index"] == 3
    assert [f["id"] for f in r.json()["linked_findings"]] == [concepts["findings"][j]["id"] for j in c["evidence"]]
    r = httpx.get(f"{server.url}/v1/concepts/OMIM:0", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert httpx.get(f"{server.url}/v1/concepts/{c['id']}").status_code == 401


def test_metrics_count_inputs_batches_errors_and_drift(server, text_export):
    from kgdistill.deploy.onnx_model import ExportedModel

    model = ExportedModel(text_export)
    notes = [NOTE, "Seizures.", "The weather was fine and the parking was easy."]
    low = model.validation_range["p05"]
    below = int((model.predict(notes, 1)[1] < low).sum())
    before = {m: metric(server, m) for m in ("kgdistill_inputs_total", "kgdistill_batch_size_count",
                                             "kgdistill_inputs_below_validation_total",
                                             "kgdistill_model_batch_size_sum")}
    auth_before = metric(server, 'kgdistill_errors_total{kind="auth"}')
    assert server.post({"inputs": notes}).status_code == 200
    assert server.post({"inputs": notes}, token=None).status_code == 401
    assert metric(server, "kgdistill_inputs_total") == before["kgdistill_inputs_total"] + 3
    assert metric(server, "kgdistill_batch_size_count") == before["kgdistill_batch_size_count"] + 1
    assert metric(server, "kgdistill_model_batch_size_sum") == before["kgdistill_model_batch_size_sum"] + 3
    assert metric(server, "kgdistill_inputs_below_validation_total") == \
        before["kgdistill_inputs_below_validation_total"] + below
    assert metric(server, 'kgdistill_errors_total{kind="auth"}') == auth_before + 1
    text = httpx.get(server.url + "/metrics").text
    assert f'kgdistill_model_info{{kind="text",method="kg_guided",version="{model.version}"}} 1.0' in text
    assert f"kgdistill_validation_best_score_p05 {low}" in text
    assert 'kgdistill_request_seconds_bucket{endpoint="/v1/predict",le="0.05"}' in text


def test_concurrent_requests_each_get_their_own_ranking(server, tiny_run):
    """Requests in flight together are scored in shared model calls (dynamic batching); each reply is the one
    its note gets when sent alone."""
    from concurrent.futures import ThreadPoolExecutor

    from test_deploy_export import _test_inputs

    notes = _test_inputs(tiny_run, "text")[:12]
    alone = [server.post({"inputs": [n], "top_k": 3}).json()["results"] for n in notes]
    scored = metric(server, "kgdistill_model_batch_size_sum")
    with ThreadPoolExecutor(12) as pool:
        together = list(pool.map(lambda n: server.post({"inputs": [n], "top_k": 3}), notes * 2))
    assert all(r.status_code == 200 for r in together)
    for reply, want in zip(together, alone * 2):
        got = reply.json()["results"]
        assert [[c["concept_id"] for c in r] for r in got] == [[c["concept_id"] for c in r] for r in want]
        assert [c["score"] for c in got[0]] == pytest.approx([c["score"] for c in want[0]], abs=1e-5)
    assert metric(server, "kgdistill_model_batch_size_sum") - scored == 24       # every input scored once


def test_health_readiness_and_openapi(server):
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(server.url + "/readyz").json()["ready"] is True
    spec = httpx.get(server.url + "/openapi.json").json()
    op = spec["paths"]["/v1/predict"]["post"]
    assert op["security"] == [{"HTTPBearer": []}]
    assert "inputs" in op["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert {"/v1/concepts/{concept_id}", "/healthz", "/readyz", "/metrics"} <= set(spec["paths"])


def test_logs_are_json_with_ids_sizes_timings_and_never_bodies_or_tokens(server):
    assert server.post({"inputs": [NOTE]}, headers={"X-Request-ID": "req-42"}).status_code == 200
    log = server.log.read_text()
    assert "zebra-quokka" not in log and "diabetes insipidus" not in log and TOKEN not in log
    lines = [json.loads(line) for line in log.splitlines()]
    req = [x for x in lines if x["event"] == "request" and x.get("request_id") == "req-42"]
    assert len(req) == 1 and req[0]["status"] == 200 and req[0]["batch"] == 1 and req[0]["bytes_in"] > 0
    assert set(req[0]) == {"ts", "level", "event", "request_id", "method", "endpoint", "status", "bytes_in",
                           "bytes_out", "batch", "ms"}


def test_sensor_server_and_graceful_shutdown(sensor_run, sensor_export, tmp_path):
    from kgdistill.deploy.onnx_model import ExportedModel

    s = Server(sensor_export, tmp_path)
    x = np.random.default_rng(1).standard_normal((2, 2, 300)).astype(np.float32)
    r = s.post({"inputs": x.tolist(), "top_k": 4})
    assert r.status_code == 200, r.text
    want = ExportedModel(sensor_export).score_inputs(x)
    got = {c["concept_id"]: c["score"] for c in r.json()["results"][0]}
    cands = ExportedModel(sensor_export).candidates
    assert got == pytest.approx({c: float(v) for c, v in zip(cands, want[0])}, abs=1e-5)
    assert s.post({"inputs": ["a note"]}).json()["field"] == "inputs[0]"
    assert s.post({"inputs": np.zeros((1, 3, 50)).tolist()}).status_code == 422   # 3 channels, not 2
    body = json.dumps({"inputs": x.tolist()}).encode()
    with socket.create_connection(("127.0.0.1", s.port)) as sock:   # a request in flight when SIGTERM arrives
        sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: "
                     + f"Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body[:100])
        time.sleep(0.5)
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        sock.sendall(body[100:])
        reply = read_reply(sock)
    assert reply.startswith("HTTP/1.1 200"), reply[:200]
    assert s.proc.wait(timeout=60) == -signal.SIGTERM     # uvicorn re-raises the signal once drained
    log = s.log.read_text()
    assert '"event": "shutdown"' in log and "Finished server process" in log


def test_alert_rules_use_metrics_the_server_exports(server):
    import re

    import yaml

    rules = yaml.safe_load((Path(__file__).resolve().parents[1] / "deploy" / "prometheus-alerts.yml").read_text())
    exprs = " ".join(r["expr"] for r in rules["groups"][0]["rules"])
    names = set(re.findall(r"kgdistill_[a-z_]+", exprs))
    assert names >= {"kgdistill_requests_total", "kgdistill_request_seconds_bucket", "kgdistill_inputs_total",
                     "kgdistill_inputs_below_validation_total"}
    exported = {line.split("{")[0].split(" ")[0] for line in httpx.get(server.url + "/metrics").text.splitlines()
                if not line.startswith("#")}
    assert names <= exported


def test_serve_refuses_to_start_without_tokens_or_with_a_changed_model(text_export, cli, tmp_path):
    env = {"KGDISTILL_TOKENS": ""}
    r = cli("serve", str(text_export), "--port", str(free_port()), env=env)
    assert r.returncode == 2 and "serve needs at least one bearer token" in r.stderr, r.stderr
    r = cli("serve", str(text_export), "--port", str(free_port()), env={"KGDISTILL_TOKENS": "tiny-secret"})
    assert r.returncode == 2 and "1 token(s) shorter than 16 characters" in r.stderr and "tiny-secret" not in r.stderr
    import shutil

    shutil.copytree(text_export, tmp_path / "copy")
    (tmp_path / "copy" / "model.onnx").write_bytes(b"not a model")
    r = cli("serve", str(tmp_path / "copy"), "--port", str(free_port()), env={"KGDISTILL_TOKENS": TOKEN})
    assert r.returncode == 2 and "model.onnx does not match its checksum" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and TOKEN not in r.stderr
