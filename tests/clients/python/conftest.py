"""Shared fixtures for the Python client tests.

Every test module starts its own real `ferry node` process (the debug binary built by
scripts/test.sh) on 127.0.0.1 port 0 with a temporary data directory, waits for its ready
line, and stops it (SIGTERM, then SIGKILL) at the end, even when a test fails.

Environment:
  FERRY_BIN          path of the ferry binary (default: $CARGO_TARGET_DIR/debug/ferry,
                     CARGO_TARGET_DIR defaulting to ~/.cache/ferry-target)
  FERRY_LOG          passed through to the node (e.g. FERRY_LOG=debug shows decode errors)
  FERRY_TEST_ARTIFACTS  where node logs are kept (default: <repo>/tests/artifacts)
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO_ROOT / "tests" / "support"))
from ferry_dev import FerryDev, ferry_bin  # noqa: E402,F401  (the path above first; shared)
READY_RE = re.compile(
    r"^ferry node ready: node_id=(?P<node_id>\d+) cluster_id=(?P<cluster_id>\S+) "
    r"bootstrap=(?P<bootstrap>\S+) admin=(?P<admin>\S+)"
)
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


class FerryNode:
    """A running `ferry node` child process."""

    def __init__(self, name: str, extra_args: list[str] | None = None):
        self.name = name
        self.data_root = Path(tempfile.mkdtemp(prefix=f"ferry-{name}-"))
        artifacts = Path(os.environ.get("FERRY_TEST_ARTIFACTS", REPO_ROOT / "tests" / "artifacts"))
        artifacts.mkdir(parents=True, exist_ok=True)
        self.log_path = artifacts / f"{name}.node.log"
        self._log = open(self.log_path, "wb")
        args = [
            str(ferry_bin()),
            "node",
            "--data-dir",
            str(self.data_root / "data"),
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            *(extra_args or []),
        ]
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        self.bootstrap, self.admin, self.cluster_id = self._wait_ready()

    def _wait_ready(self) -> tuple[str, str, str]:
        result: dict[str, str] = {}
        lines: list[str] = []

        def reader() -> None:
            assert self.proc.stdout is not None
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                lines.append(line)
                m = READY_RE.match(line)
                if m and not result:
                    result.update(m.groupdict())
                    ready.set()
            ready.set()  # EOF: the process exited (or closed stdout)

        ready = threading.Event()
        threading.Thread(target=reader, name=f"{self.name}-stdout", daemon=True).start()
        if not ready.wait(READY_TIMEOUT_S) or not result:
            code = self.proc.poll()
            self.stop()
            raise RuntimeError(
                f"ferry node did not print its ready line within {READY_TIMEOUT_S}s "
                f"(exit code {code}); stdout={lines!r}; stderr tail:\n{self.log_tail()}"
            )
        return result["bootstrap"], result["admin"], result["cluster_id"]

    def log_tail(self, n: int = 40) -> str:
        try:
            self._log.flush()
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "<no log>"
        return "\n".join(text[-n:])

    def stop(self) -> int | None:
        code = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(STOP_TIMEOUT_S)
                code = None
        else:
            code = self.proc.returncode
        self._log.close()
        shutil.rmtree(self.data_root, ignore_errors=True)
        return code


@pytest.fixture(scope="module")
def ferry_node(request):
    """One ferry node per test module; yields the FerryNode."""
    name = f"{Path(request.fspath).stem}-{os.getpid()}"
    node = FerryNode(name)
    try:
        yield node
    finally:
        code = node.stop()
        # A clean SIGTERM shutdown exits 0; anything else is worth a look in the log.
        if code not in (0, None):
            print(f"\nferry node {name} exited with {code}; log: {node.log_path}")


@pytest.fixture
def topic_name(request) -> str:
    """A fresh topic name per test."""
    base = re.sub(r"[^A-Za-z0-9._-]", "-", request.node.name)[:80]
    return f"{base}-{uuid.uuid4().hex[:8]}"


def wait_until(predicate, timeout_s: float = 15.0, interval_s: float = 0.1, what: str = "condition"):
    """Polls predicate() until it returns a truthy value; fails after timeout_s."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last value: {last!r})")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a test failure, attach the tail of the node's log to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and "ferry_node" in item.fixturenames:
        node = item.funcargs.get("ferry_node")
        if isinstance(node, FerryNode):
            report.sections.append(("ferry node log (tail)", f"{node.log_path}\n{node.log_tail()}"))
