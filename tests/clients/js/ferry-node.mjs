// Starts a real `ferry node` for the JavaScript client tests and stops it afterwards.
//
// The binary is FERRY_BIN, or $CARGO_TARGET_DIR/debug/ferry (CARGO_TARGET_DIR defaulting to
// ~/.cache/ferry-target), built by scripts/test.sh. The node listens on 127.0.0.1 port 0
// with a temporary data directory; its stderr goes to tests/artifacts/<name>.node.log.

import { spawn, execFile } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const READY_RE = /^ferry node ready: node_id=(\d+) cluster_id=(\S+) bootstrap=(\S+) admin=(\S+)/;
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

export function ferryBin() {
  const target = process.env.CARGO_TARGET_DIR || join(homedir(), '.cache', 'ferry-target');
  const bin = process.env.FERRY_BIN || join(target, 'debug', 'ferry');
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    throw new Error(
      `ferry binary not found at ${bin}: build it first (bash scripts/test.sh does; ` +
        'or `cargo build -p ferry-cli`), or set FERRY_BIN',
    );
  }
  return bin;
}

export class FerryNode {
  static async start(name) {
    const node = new FerryNode(name);
    await node.#waitReady();
    return node;
  }

  constructor(name) {
    this.name = name;
    this.dataRoot = mkdtempSync(join(tmpdir(), `ferry-${name}-`));
    const artifacts = process.env.FERRY_TEST_ARTIFACTS || join(REPO_ROOT, 'tests', 'artifacts');
    mkdirSync(artifacts, { recursive: true });
    this.logPath = join(artifacts, `${name}.node.log`);
    this.logFd = openSync(this.logPath, 'w');
    this.proc = spawn(
      ferryBin(),
      ['node', '--data-dir', join(this.dataRoot, 'data'), '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'],
      { stdio: ['ignore', 'pipe', this.logFd], detached: true },
    );
    this.exited = new Promise((resolveExit) => {
      this.proc.on('exit', (code, signal) => resolveExit({ code, signal }));
    });
  }

  async #waitReady() {
    const lines = [];
    const rl = createInterface({ input: this.proc.stdout });
    let timer;
    try {
      const ready = await Promise.race([
        new Promise((resolveReady) => {
          rl.on('line', (line) => {
            lines.push(line);
            const m = READY_RE.exec(line);
            if (m) resolveReady({ nodeId: Number(m[1]), clusterId: m[2], bootstrap: m[3], admin: m[4] });
          });
        }),
        this.exited.then(({ code, signal }) => {
          throw new Error(`ferry node exited before ready (code ${code}, signal ${signal})`);
        }),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no ready line within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
        }),
      ]);
      Object.assign(this, ready);
    } catch (err) {
      await this.stop();
      throw new Error(`${err.message}; stdout=${JSON.stringify(lines)}; log tail:\n${this.logTail()}`);
    } finally {
      clearTimeout(timer);
    }
  }

  logTail(n = 40) {
    try {
      return readFileSync(this.logPath, 'utf8').split('\n').slice(-n).join('\n');
    } catch {
      return '<no log>';
    }
  }

  // SIGTERM, then SIGKILL after STOP_TIMEOUT_MS; removes the data directory. Returns the exit status.
  async stop() {
    let status;
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      let timer;
      status = await Promise.race([
        this.exited,
        new Promise((r) => {
          timer = setTimeout(() => r(null), STOP_TIMEOUT_MS);
        }),
      ]);
      clearTimeout(timer);
      if (status === null) {
        try {
          process.kill(-this.proc.pid, 'SIGKILL');
        } catch {
          // already gone
        }
        status = await this.exited;
      }
    } else {
      status = { code: this.proc.exitCode, signal: this.proc.signalCode };
    }
    try {
      closeSync(this.logFd);
    } catch {
      // already closed
    }
    rmSync(this.dataRoot, { recursive: true, force: true });
    return status;
  }
}

// Runs a command with a hard timeout; resolves { code, stdout, stderr } (never rejects on a
// non-zero exit, so tests can assert on failures).
export function run(cmd, args, { input, timeoutMs = 30_000 } = {}) {
  return new Promise((resolveRun, rejectRun) => {
    const child = execFile(
      cmd,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err && err.code === 'ENOENT') {
          rejectRun(new Error(`${cmd} not found (scripts/test.sh installs it)`));
          return;
        }
        if (err && err.killed) {
          rejectRun(new Error(`${cmd} ${args.join(' ')} timed out after ${timeoutMs} ms; stderr: ${stderr}`));
          return;
        }
        resolveRun({ code: err ? err.code : 0, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
  });
}
