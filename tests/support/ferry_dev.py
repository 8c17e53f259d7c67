"""`ferry dev` for the Python test suites (the console's browser tests, the client tests).

`FerryDev` starts `ferry dev` (the binary FERRY_BIN names) on a free API port and a free block
of agent ports, with a temporary data directory; it reads the admin token from its output and
mints other tokens with `ferry token create`. `stop()` stops the stack with SIGINT (the agents
stop their nodes), then kills whatever survives: the process group, and every `ferry node`
whose command line names the temporary directory (each by its pid).

Environment:
  FERRY_BIN  the ferry binary (default $CARGO_TARGET_DIR/debug/ferry, CARGO_TARGET_DIR
             defaulting to ~/.cache/ferry-target)
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

# Bounds on every wait of the harness.
STACK_READY_TIMEOUT_S = 90.0
STACK_STOP_TIMEOUT_S = 30.0
TOKEN_LINE = re.compile(r"^\s*admin token:\s+(\S+)")
# Ports each dev agent takes (cli/src/dev.rs AGENT_PORT_SPAN) times its three agents.
AGENT_PORTS = 3 * 200


def ferry_bin() -> Path:
    explicit = os.environ.get("FERRY_BIN")
    if explicit:
        path = Path(explicit)
    else:
        target = os.environ.get("CARGO_TARGET_DIR") or str(Path.home() / ".cache" / "ferry-target")
        path = Path(target) / "debug" / "ferry"
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise RuntimeError(f"ferry binary not found at {path}: build it (cargo build -p ferry-cli --bin ferry) or set FERRY_BIN")
    return path


def port_free(port: int) -> bool:
    """Whether a listener could bind `port` now. SO_REUSEADDR, as the nodes set it (Rust's
    std and tokio do): connections in TIME_WAIT do not make a port busy, only a listener."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_block(size: int, avoid: int) -> int:
    """A first port of `size` consecutive free ports (below the kernel's ephemeral range)."""
    for _ in range(50):
        base = random.randrange(20000, 32000 - size)
        if base <= avoid < base + size:
            continue
        if all(port_free(p) for p in range(base, base + size)):
            return base
    raise RuntimeError(f"no block of {size} free ports found")


class FerryDev:
    """A running `ferry dev`: control plane + 3 agents (zones zone-a, zone-b, zone-c) on loopback.

    Its log (streamed with `--verbose`) goes to `log_path`, with its stdout lines marked
    `[stdout]`; `extra_args` are added to the command line."""

    def __init__(self, log_path: Path, extra_args: list[str] | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ferry-dev-"))
        self.data_dir = self.root / "data"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self._log = open(self.log_path, "wb")
        self.api_port = free_port()
        self.agent_ports = free_port_block(AGENT_PORTS, self.api_port)
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.proc = subprocess.Popen(
            [
                str(ferry_bin()), "dev",
                "--data-dir", str(self.data_dir),
                "--api-port", str(self.api_port),
                "--agent-ports", str(self.agent_ports),
                # Declared, so the console's 10 GiB default fits on a CI machine with little
                # free disk (nothing is written beyond what the tests produce).
                "--storage-bytes-per-host", str(1 << 40),
                # The whole log on stderr (a quiet `ferry dev` keeps it in its data dir, which
                # the test removes), so the artifact shows what happened.
                "--verbose",
                *(extra_args or []),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        self.admin_token = self._wait_for_token()

    def _wait_for_token(self) -> str:
        found: list[str] = []
        lines: list[str] = []
        ready = threading.Event()

        def reader() -> None:
            assert self.proc.stdout is not None
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                lines.append(line)
                self._log.write(f"[stdout] {line}\n".encode())
                m = TOKEN_LINE.match(line)
                if m and not found:
                    found.append(m.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=reader, name="ferry-dev-stdout", daemon=True).start()
        if not ready.wait(STACK_READY_TIMEOUT_S) or not found:
            code = self.proc.poll()
            self.stop()
            raise RuntimeError(f"ferry dev printed no admin token within {STACK_READY_TIMEOUT_S}s (exit {code}); stdout={lines!r}")
        return found[0]

    def mint(self, role: str, tenant: str = "dev") -> str:
        out = subprocess.run(
            [
                str(ferry_bin()), "token", "create", "--tenant", tenant, "--role", role,
                "--token-secret-file", str(self.data_dir / "control-plane" / "token-secret"),
            ],
            check=True, capture_output=True, text=True, timeout=30,
        )
        return out.stdout.strip()

    def request(self, method: str, path: str, body=None, token: str | None = None) -> tuple[int, dict]:
        """One REST call; returns (status, JSON body)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                text = resp.read().decode()
                return resp.status, (json.loads(text) if text else {})
        except urllib.error.HTTPError as err:
            text = err.read().decode()
            return err.code, (json.loads(text) if text else {})

    def delete_cluster_and_wait(self, cluster_id: str, timeout_s: float = 120.0) -> None:
        """Deletes the cluster (retrying while another operation runs), waits until it is gone,
        then until every port its nodes had is free again.

        Why the last wait: the control plane may hand a deleted cluster's ports to the next
        cluster while the old node processes are still exiting, and a node that cannot bind
        fails its cluster after a few restarts (reported; not the console's to fix). Tests
        run one after another on one stack, so each leaves its ports free for the next."""
        status, cluster = self.request("GET", f"/v1/clusters/{cluster_id}", token=self.admin_token)
        if status == 404:
            return
        ports = set()
        for node in cluster.get("status", {}).get("nodes", []):
            for key in ("kafkaPort", "controllerPort", "adminPort"):
                if node.get(key):
                    ports.add(int(node[key]))
        deadline = time.monotonic() + timeout_s

        def wait(what: str, predicate) -> None:
            while not predicate():
                if time.monotonic() > deadline:
                    raise AssertionError(f"cluster {cluster_id}: timed out after {timeout_s}s waiting for {what}")
                time.sleep(0.5)

        wait("the DELETE to be accepted", lambda: self.request(
            "DELETE", f"/v1/clusters/{cluster_id}", token=self.admin_token)[0] in (200, 404))
        wait("the cluster to be gone", lambda: self.request(
            "GET", f"/v1/clusters/{cluster_id}", token=self.admin_token)[0] == 404)
        wait(f"its ports {sorted(ports)} to be free", lambda: all(port_free(p) for p in ports))

    def wait_cluster_gone(self, cluster_id: str, ports: set[int], timeout_s: float = 120.0) -> None:
        """Waits until a cluster deleted elsewhere (the console) is gone and its ports are free."""
        deadline = time.monotonic() + timeout_s
        while self.request("GET", f"/v1/clusters/{cluster_id}", token=self.admin_token)[0] != 404 \
                or not all(port_free(p) for p in ports):
            if time.monotonic() > deadline:
                raise AssertionError(f"cluster {cluster_id} still present or its ports busy after {timeout_s}s")
            time.sleep(0.5)

    def cluster_ports(self, cluster_id: str) -> set[int]:
        """Every port the cluster's nodes listen on."""
        _, cluster = self.request("GET", f"/v1/clusters/{cluster_id}", token=self.admin_token)
        return {int(n[k]) for n in cluster.get("status", {}).get("nodes", [])
                for k in ("kafkaPort", "controllerPort", "adminPort") if n.get(k)}

    def node_pids(self) -> list[int]:
        """Pids of every process whose command line names this stack's directory."""
        pids = []
        needle = str(self.root).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if needle in cmdline:
                pids.append(int(entry.name))
        return pids

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(STACK_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(10)
        for pid in self.node_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._log.close()
        shutil.rmtree(self.root, ignore_errors=True)
