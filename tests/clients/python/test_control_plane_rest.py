"""The control plane's REST API, fuzzed by schemathesis from its own /openapi.json.

Starts a real `ferry control-plane` (the binary conftest.ferry_bin() finds) on 127.0.0.1 port 0
with a temporary data directory, mints an admin token with `ferry token create`, and runs the
schemathesis CLI (from the same venv as pytest) against the served document with a bounded
number of examples per operation. Every response must be a non-5xx that matches the document:
status code, content type and body schema.

The fleet is empty (no agent registers hosts here), so CreateCluster is always refused; the
run exercises decoding, routing, authentication, validation and the error bodies.

Environment:
  FERRY_SCHEMATHESIS_MAX_EXAMPLES   examples per operation and phase (default 25)
  FERRY_SCHEMATHESIS_SEED           a seed, to replay a run (default: a fresh one, printed)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO_ROOT, ferry_bin

READY_PREFIX = "ferry control-plane ready: api="
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
SCHEMATHESIS_TIMEOUT_S = 150.0
# Checks that hold for any request, valid or not. Left out: positive_data_acceptance (the
# document cannot express every validation rule, e.g. that a zone must have hosts) and the
# stateful resource checks (no cluster can be created without hosts).
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


class ControlPlane:
    """A running `ferry control-plane` child process."""

    def __init__(self, name: str):
        self.root = Path(tempfile.mkdtemp(prefix=f"ferry-{name}-"))
        self.secret = self.root / "token-secret"
        artifacts = Path(os.environ.get("FERRY_TEST_ARTIFACTS", REPO_ROOT / "tests" / "artifacts"))
        artifacts.mkdir(parents=True, exist_ok=True)
        self.log_path = artifacts / f"{name}.control-plane.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [
                str(ferry_bin()),
                "control-plane",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                str(self.root / "data"),
                "--token-secret-file",
                str(self.secret),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        self.url = f"http://{self._wait_ready()}"

    def _wait_ready(self) -> str:
        found: list[str] = []
        ready = threading.Event()

        def reader() -> None:
            assert self.proc.stdout is not None
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace").strip()
                if line.startswith(READY_PREFIX) and not found:
                    found.append(line[len(READY_PREFIX):])
                    ready.set()
            ready.set()  # EOF: the process exited

        threading.Thread(target=reader, name="control-plane-stdout", daemon=True).start()
        if not ready.wait(READY_TIMEOUT_S) or not found:
            code = self.proc.poll()
            self.stop()
            raise RuntimeError(
                f"ferry control-plane printed no ready line within {READY_TIMEOUT_S}s "
                f"(exit code {code}); log: {self.log_path}"
            )
        return found[0]

    def token(self, tenant: str, role: str) -> str:
        out = subprocess.run(
            [
                str(ferry_bin()),
                "token",
                "create",
                "--tenant",
                tenant,
                "--role",
                role,
                "--token-secret-file",
                str(self.secret),
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return out.stdout.strip()

    def stop(self) -> int | None:
        code = self.proc.poll()
        if code is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(STOP_TIMEOUT_S)
                code = None
        self._log.close()
        shutil.rmtree(self.root, ignore_errors=True)
        return code


@pytest.fixture(scope="module")
def control_plane():
    cp = ControlPlane(f"rest-{os.getpid()}")
    try:
        yield cp
    finally:
        code = cp.stop()
        assert code == 0, f"ferry control-plane exited with {code}; log: {cp.log_path}"


def get_json(url: str, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def test_the_document_and_an_error_body_over_http_1_1(control_plane):
    status, doc = get_json(f"{control_plane.url}/openapi.json")
    assert status == 200
    assert doc["openapi"].startswith("3.")
    assert "/v1/clusters/{cluster_id}" in doc["paths"]

    status, body = get_json(f"{control_plane.url}/v1/clusters")
    assert status == 401
    assert body["code"] == "UNAUTHENTICATED"
    assert body["reason"] == "UNAUTHENTICATED"

    token = control_plane.token("acme", "viewer")
    status, body = get_json(f"{control_plane.url}/v1/clusters?pageSize=5", token)
    assert status == 200, body
    assert body == {"clusters": [], "nextPageToken": ""}


def test_schemathesis_finds_no_server_error(control_plane, tmp_path):
    token = control_plane.token("fuzz", "admin")
    schemathesis = Path(sys.executable).with_name("schemathesis")
    assert schemathesis.is_file(), f"schemathesis is not installed next to {sys.executable}"
    args = [
        str(schemathesis),
        "run",
        f"{control_plane.url}/openapi.json",
        "--url",
        control_plane.url,
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--max-examples",
        os.environ.get("FERRY_SCHEMATHESIS_MAX_EXAMPLES", "25"),
        # One worker: CPython 3.11's ast.parse is not thread-safe ("AST constructor recursion
        # depth mismatch"), and hypothesis parses lambdas while schemathesis runs workers in
        # threads.
        "--workers",
        "1",
    ]
    seed = os.environ.get("FERRY_SCHEMATHESIS_SEED")
    if seed:
        args += ["--seed", seed]
    result = subprocess.run(
        args,
        cwd=tmp_path,  # schemathesis and hypothesis may leave files in the working directory
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=SCHEMATHESIS_TIMEOUT_S,
    )
    output = result.stdout + result.stderr
    print(output[-4000:])
    assert result.returncode == 0, (
        f"schemathesis failed (exit {result.returncode}); control-plane log: "
        f"{control_plane.log_path}\n{output[-8000:]}"
    )
    assert control_plane.proc.poll() is None, "the control plane died during the run"
