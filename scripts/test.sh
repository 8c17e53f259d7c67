#!/usr/bin/env bash
# Ferry's one test command (also what CI runs, through .ci/run):
#
#     bash scripts/test.sh
#
# Works from any directory, on a fresh Debian 12 machine as root (or with sudo) that has the
# Rust toolchain, python3 (3.11+) with pip, node 20 with npm and terraform 1.11 (no package
# source for it is reachable from these machines, so it is checked, not installed). It
# installs what it needs, idempotently (a second run installs nothing and spends well under a
# second on this):
#   * Debian packages: kcat, iproute2, iptables, and chromium for the console stage (apt-get
#     update runs once, only when something is missing);
#   * a Python venv at .venv (gitignored) from tests/clients/python/requirements.txt;
#   * npm packages in tests/clients/js/node_modules from the committed package-lock.json (npm ci).
# Then it runs these stages, in this order, stopping at the first failure (non-zero exit):
#   deps     the installs above (only when a client stage is selected)
#   fmt      cargo fmt --all -- --check (and the same for the fuzz/ workspace), then
#            scripts/check_import_cycles.py (no new import cycles between sibling modules)
#   clippy   cargo clippy --workspace --all-targets -- -D warnings, then
#            RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps (doc links resolve)
#   build    cargo build --workspace --all-targets (builds $CARGO_TARGET_DIR/debug/ferry for the
#            clients)
#   docs     scripts/check_doc_commands.sh: every command shown in README.md and docs/*.md in a
#            sh/bash/console block matches the binaries and the repository (`ferry` subcommands
#            and flags from `--help`, nothing started; repository paths, cargo packages, fuzz
#            targets); a block marked `<!-- example: real hosts -->` is skipped
#   rust     cargo nextest run --workspace --no-fail-fast (cargo test --workspace without nextest);
#            includes terraform/tests/acceptance.rs, which needs `terraform` (1.11) on PATH
#            (or TERRAFORM_BIN) and finds ferry through FERRY_BIN below
#   fuzz     scripts/fuzz.sh all $FERRY_FUZZ_SECONDS: every libFuzzer target (fuzz/, see
#            docs/fuzzing.md) for a bounded time with the checked-in corpus; installs
#            cargo-fuzz into ~/.cache/ferry-tools and builds into ~/.cache/ferry-fuzz-target
#            (outside the clone) the first time. Fails on a crash, except the known crashes
#            listed in scripts/fuzz.sh (KNOWN_CRASHES)
#   kcat     tests/clients/shell/test_kcat.sh
#   js       node --test tests/clients/js/*.test.mjs (kafkajs)
#   python   pytest tests/clients/python (kafka-python 3.x, confluent-kafka)
#   console  pytest tests/console: the web console in headless Chromium (Playwright driving
#            Debian's /usr/bin/chromium) against a real `ferry dev` stack; screenshots of
#            every page in tests/artifacts/console/
# and ends with a per-stage timing/count table and one closing line `N passed, M failed`
# summing what the test runners reported.
#
# Environment:
#   FERRY_TEST_ONLY   comma-separated stages (names above) or groups to run instead of all:
#                     `clients` = kcat,js,python,console (+ deps, + a build of just the ferry
#                     binary),
#                     `lint` = fmt,clippy, `rustall` = fmt,clippy,build,docs,rust.
#                     `docs` without `build` builds just the ferry and ferry-load binaries.
#                     E.g. FERRY_TEST_ONLY=clients bash scripts/test.sh
#   CARGO_TARGET_DIR  default $HOME/.cache/ferry-target (outside the clone; exported).
#   FERRY_LOG         passed to the ferry nodes the client tests start (e.g. debug); their
#                     logs are kept in tests/artifacts/*.node.log (gitignored).
#   FERRY_TEST_STAGE_TIMEOUT_MIN  hard limit per test-runner stage, minutes (default 25).
#   FERRY_FUZZ_SECONDS  how long the fuzz stage runs each target (default 20).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT="$(pwd)"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ferry-target}"
export FERRY_BIN="$CARGO_TARGET_DIR/debug/ferry"
export PYTHONDONTWRITEBYTECODE=1
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_NO_INPUT=1
export DEBIAN_FRONTEND=noninteractive
export NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false
STAGE_TIMEOUT="$(( ${FERRY_TEST_STAGE_TIMEOUT_MIN:-25} * 60 ))"

LOG_DIR="$(mktemp -d -t ferry-test-XXXXXX)"
trap 'rm -rf "$LOG_DIR"' EXIT

# ---------------------------------------------------------------------------------------
# Stage selection
ALL_STAGES=(deps fmt clippy build docs rust fuzz kcat js python console)
declare -A SELECTED=()
select_stages() {
  local item
  IFS=',' read -r -a items <<<"${FERRY_TEST_ONLY:-all}"
  for item in "${items[@]}"; do
    item="${item// /}"
    case "$item" in
      "" ) ;;
      all) for s in "${ALL_STAGES[@]}"; do SELECTED[$s]=1; done ;;
      clients) SELECTED[deps]=1 SELECTED[kcat]=1 SELECTED[js]=1 SELECTED[python]=1 SELECTED[console]=1 ;;
      lint) SELECTED[fmt]=1 SELECTED[clippy]=1 ;;
      rustall) SELECTED[fmt]=1 SELECTED[clippy]=1 SELECTED[build]=1 SELECTED[docs]=1 SELECTED[rust]=1 ;;
      deps|fmt|clippy|build|docs|rust|fuzz|kcat|js|python|console) SELECTED[$item]=1 ;;
      *) echo "scripts/test.sh: unknown stage '$item' in FERRY_TEST_ONLY (stages: ${ALL_STAGES[*]}; groups: all, clients, lint, rustall)" >&2; exit 2 ;;
    esac
  done
  # Client stages need their tools installed and the ferry binary built; the Rust tests use
  # kcat and iptables (multi-host and network-partition tests).
  if [[ -n "${SELECTED[rust]:-}${SELECTED[kcat]:-}${SELECTED[js]:-}${SELECTED[python]:-}${SELECTED[console]:-}" ]]; then
    SELECTED[deps]=1
  fi
}
selected() { [[ -n "${SELECTED[$1]:-}" ]]; }
select_stages

# ---------------------------------------------------------------------------------------
# Output helpers
STAGE_NAMES=()
declare -A STAGE_SECS=() STAGE_COUNTS=()
TOTAL_PASSED=0 TOTAL_FAILED=0 TOTAL_OTHER=""

header() {
  echo
  echo "================================================================================"
  echo "== $*"
  echo "================================================================================"
}

# run_stage NAME DESCRIPTION FUNCTION: runs FUNCTION in a subshell with errexit in force
# (a function called as `fn || ...` would run with errexit off), records its duration and
# test counts; exits the script on failure.
run_stage() {
  local name="$1" desc="$2" fn="$3"
  header "[$name] $desc"
  local start=$SECONDS rc
  set +e
  ( set -e; "$fn" )
  rc=$?
  set -e
  STAGE_NAMES+=("$name")
  STAGE_SECS[$name]=$(( SECONDS - start ))
  if [[ $rc -ne 0 ]]; then
    echo
    echo "scripts/test.sh: stage '$name' FAILED (exit $rc) after ${STAGE_SECS[$name]}s"
    exit "$rc"
  fi
  if [[ -f "$LOG_DIR/$name.counts" ]]; then
    local passed failed extra
    IFS='|' read -r passed failed extra <"$LOG_DIR/$name.counts"
    STAGE_COUNTS[$name]="$passed passed, $failed failed${extra:+, $extra}"
    TOTAL_PASSED=$(( TOTAL_PASSED + passed ))
    TOTAL_FAILED=$(( TOTAL_FAILED + failed ))
    if [[ -n "$extra" ]]; then TOTAL_OTHER="${TOTAL_OTHER:+$TOTAL_OTHER; }$name: $extra"; fi
  fi
  echo "-- [$name] ok (${STAGE_SECS[$name]}s${STAGE_COUNTS[$name]:+; ${STAGE_COUNTS[$name]}})"
}

# with_log NAME CMD...: runs CMD under a hard time limit, output to the terminal and to
# $LOG_DIR/NAME.log; returns CMD's exit status.
with_log() {
  local name="$1"; shift
  local rc
  set +e
  timeout --kill-after=30 "$STAGE_TIMEOUT" "$@" 2>&1 | tee "$LOG_DIR/$name.log"
  rc=${PIPESTATUS[0]}
  set -e
  sed -i 's/\x1b\[[0-9;]*[A-Za-z]//g' "$LOG_DIR/$name.log"  # strip colours before parsing
  if [[ $rc -eq 124 || $rc -eq 137 ]]; then
    echo "scripts/test.sh: '$*' hit the ${STAGE_TIMEOUT}s stage limit" >&2
  fi
  return "$rc"
}

# record_counts STAGE PASSED FAILED [EXTRA]: called inside a stage (a subshell); run_stage
# picks the numbers up.
record_counts() {
  echo "$2|$3|${4:-}" >"$LOG_DIR/$1.counts"
}

# ---------------------------------------------------------------------------------------
# deps: Debian packages, the Python venv, the npm packages
as_root() {
  if [[ $EUID -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo -n "$@"
  else echo "scripts/test.sh: need root (or sudo) to run: $*" >&2; return 1
  fi
}

APT_UPDATED=""
apt_install() { # apt_install PACKAGE...
  if [[ -z "$APT_UPDATED" ]]; then
    echo "apt-get update"
    as_root apt-get update -qq
    APT_UPDATED=1
  fi
  echo "apt-get install -y --no-install-recommends $*"
  as_root apt-get install -y -qq --no-install-recommends "$@"
}

ensure_debian_packages() {
  local missing=()
  command -v kcat >/dev/null || missing+=(kcat)
  # The multi-host and network-partition tests: namespaces, veth, bridges, iptables.
  command -v ip >/dev/null || missing+=(iproute2)
  command -v iptables >/dev/null || missing+=(iptables)
  # The Terraform provider's acceptance test drives the real binary; say so up front.
  if selected rust && ! command -v "${TERRAFORM_BIN:-terraform}" >/dev/null; then
    echo "scripts/test.sh: terraform 1.11 is needed on PATH (or TERRAFORM_BIN) for" \
      "terraform/tests/acceptance.rs; install it from HashiCorp's releases" >&2
    return 1
  fi
  command -v timeout >/dev/null || missing+=(coreutils)
  command -v diff >/dev/null && command -v cmp >/dev/null || missing+=(diffutils)
  # The console's browser tests drive Debian's chromium (Playwright cannot download its own).
  if selected console && [[ ! -x /usr/bin/chromium ]]; then missing+=(chromium); fi
  if (( ${#missing[@]} )); then
    apt_install "${missing[@]}"
  else
    echo "Debian packages: kcat $(dpkg-query -W -f='${Version}' kcat 2>/dev/null || echo '(not from apt)') already installed"
  fi
}

PY_REQS="tests/clients/python/requirements.txt"
ensure_python_venv() {
  local py="${PYTHON:-python3}"
  command -v "$py" >/dev/null || { echo "scripts/test.sh: $py not found" >&2; return 1; }
  if ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
    rm -rf .venv
    echo "creating .venv with $("$py" --version)"
    if ! "$py" -m venv .venv; then
      # Debian's own python3 ships venv/ensurepip separately.
      rm -rf .venv
      local ver; ver="$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
      apt_install "python${ver}-venv"
      "$py" -m venv .venv
    fi
  fi
  local want; want="$(cat "$PY_REQS" <(.venv/bin/python --version) | sha256sum | cut -d' ' -f1)"
  local versions=(.venv/bin/python -c 'import importlib.metadata as m; print(" ".join(f"{d}=={m.version(d)}" for d in ("kafka-python", "confluent-kafka", "pytest", "pytest-timeout", "playwright")))')
  local have
  if [[ "$(cat .venv/.ferry-deps 2>/dev/null)" == "$want" ]] && have="$("${versions[@]}" 2>/dev/null)"; then
    echo "Python venv .venv: up to date ($have)"
  else
    echo "pip install -r $PY_REQS (into .venv)"
    .venv/bin/python -m pip install --quiet -r "$PY_REQS"
    echo "$want" >.venv/.ferry-deps
    echo "Python venv .venv: $("${versions[@]}")"
  fi
}

ensure_npm_packages() {
  local dir="tests/clients/js"
  if [[ -f "$dir/package-lock.json" ]]; then
    local want; want="$(cat "$dir/package-lock.json" <(node --version) | sha256sum | cut -d' ' -f1)"
    if [[ "$(cat "$dir/node_modules/.ferry-deps" 2>/dev/null)" == "$want" ]]; then
      echo "npm packages in $dir: up to date (kafkajs $(node -p "require('./$dir/node_modules/kafkajs/package.json').version"))"
      return 0
    fi
    echo "npm ci (in $dir)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" >"$dir/node_modules/.ferry-deps"
  else
    echo "npm install (in $dir; no package-lock.json yet)"
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
  fi
}

stage_deps() {
  ensure_debian_packages
  ensure_python_venv
  ensure_npm_packages
}

# ---------------------------------------------------------------------------------------
# Rust stages
stage_fmt() {
  cargo fmt --all -- --check
  cargo fmt --manifest-path fuzz/Cargo.toml -- --check
  # No module imports a sibling that imports it back, beyond the allowlisted ones.
  python3 scripts/check_import_cycles.py
}
stage_clippy() {
  cargo clippy --workspace --all-targets -- -D warnings || return $?
  # The module docs' links resolve and their markup is valid (rustdoc's lints as errors).
  RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
}
stage_build() { cargo build --workspace --all-targets; }
stage_build_bin() {
  local packages=(-p ferry-cli)
  # The docs check reads ferry-load's --help too.
  if selected docs; then packages+=(-p ferry-load); fi
  cargo build "${packages[@]}" --bins
}

# docs: the commands README.md and docs/ show still match the binaries and the repository.
stage_docs() {
  require_ferry_bin
  with_log docs bash scripts/check_doc_commands.sh || return $?
  # "check_doc_commands: 103 checks passed, 0 failed (12 files, ...)"
  local line passed failed
  line="$(grep -E '^check_doc_commands: [0-9]+ checks passed, [0-9]+ failed' "$LOG_DIR/docs.log" | tail -n 1 || true)"
  [[ -n "$line" ]] || { echo "scripts/test.sh: no summary line from check_doc_commands.sh" >&2; return 1; }
  passed="$(grep -oE '[0-9]+ checks passed' <<<"$line" | grep -oE '[0-9]+')"
  failed="$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+')"
  (( passed > 0 )) || { echo "scripts/test.sh: the docs check checked nothing" >&2; return 1; }
  record_counts docs "$passed" "$failed"
}

stage_rust() {
  local log="$LOG_DIR/rust.log"
  if cargo nextest --version >/dev/null 2>&1; then
    with_log rust cargo nextest run --workspace --no-fail-fast || return $?
    # "Summary [  12.345s] 120 tests run: 120 passed, 3 skipped"
    local line passed failed skipped
    line="$(grep -E 'Summary \[.*tests? run:' "$log" | tail -n 1 || true)"
    passed="$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+' || echo 0)"
    failed="$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+' || echo 0)"
    skipped="$(grep -oE '[0-9]+ skipped' <<<"$line" | grep -oE '[0-9]+' || echo 0)"
    (( passed > 0 )) || { echo "scripts/test.sh: cargo nextest reported no passed tests" >&2; return 1; }
    record_counts rust "$passed" "$failed" "$(if ((skipped)); then echo "$skipped skipped"; fi)"
  else
    echo "(cargo-nextest not installed: using cargo test)"
    with_log rust cargo test --workspace --no-fail-fast || return $?
    # "test result: ok. 12 passed; 0 failed; 1 ignored; ..."
    local passed failed ignored
    passed="$(grep -E '^test result: ' "$log" | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}' || true)"
    failed="$(grep -E '^test result: ' "$log" | grep -oE '[0-9]+ failed' | awk '{s+=$1} END {print s+0}' || true)"
    ignored="$(grep -E '^test result: ' "$log" | grep -oE '[0-9]+ ignored' | awk '{s+=$1} END {print s+0}' || true)"
    record_counts rust "${passed:-0}" "${failed:-0}" "$(if ((ignored)); then echo "$ignored ignored"; fi)"
  fi
}

stage_fuzz() {
  with_log fuzz bash scripts/fuzz.sh all "${FERRY_FUZZ_SECONDS:-20}" || return $?
  # "fuzz: 8 targets, 1234567 executions, 0 new crashes, 2 known crashes"
  local line targets execs known
  line="$(grep -E '^fuzz: [0-9]+ targets, ' "$LOG_DIR/fuzz.log" | tail -n 1 || true)"
  [[ -n "$line" ]] || { echo "scripts/test.sh: no summary line from scripts/fuzz.sh" >&2; return 1; }
  targets="$(grep -oE '[0-9]+ targets' <<<"$line" | grep -oE '[0-9]+')"
  execs="$(grep -oE '[0-9]+ executions' <<<"$line" | grep -oE '[0-9]+')"
  known="$(grep -oE '[0-9]+ known crashes' <<<"$line" | grep -oE '[0-9]+')"
  (( execs > 0 )) || { echo "scripts/test.sh: the fuzz targets executed no input" >&2; return 1; }
  # A target counts as passed when it ran without a new crash (scripts/fuzz.sh exits 1 otherwise).
  record_counts fuzz "$targets" 0 "$execs executions, $known known crashes"
}

# ---------------------------------------------------------------------------------------
# Client stages
require_ferry_bin() {
  if [[ ! -x "$FERRY_BIN" ]]; then
    echo "scripts/test.sh: $FERRY_BIN is missing; the build stage should have produced it" >&2
    return 1
  fi
}

stage_kcat() {
  require_ferry_bin
  with_log kcat bash tests/clients/shell/test_kcat.sh || return $?
  local line; line="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$LOG_DIR/kcat.log" | tail -n 1 || true)"
  [[ -n "$line" ]] || { echo "scripts/test.sh: no summary line from test_kcat.sh" >&2; return 1; }
  local passed failed; read -r passed _ failed _ <<<"${line//,/}"
  (( passed > 0 )) || { echo "scripts/test.sh: test_kcat.sh ran no checks" >&2; return 1; }
  record_counts kcat "$passed" "$failed"
}

stage_js() {
  require_ferry_bin
  local files=(tests/clients/js/*.test.mjs)
  [[ -e "${files[0]}" ]] || { echo "scripts/test.sh: no tests/clients/js/*.test.mjs" >&2; return 1; }
  with_log js node --test --test-reporter=tap --test-concurrency=1 "${files[@]}" || return $?
  local passed failed skipped todo
  passed="$(grep -E '^# pass [0-9]+' "$LOG_DIR/js.log" | tail -n 1 | awk '{print $3}' || true)"
  failed="$(grep -E '^# fail [0-9]+' "$LOG_DIR/js.log" | tail -n 1 | awk '{print $3}' || true)"
  skipped="$(grep -E '^# skipped [0-9]+' "$LOG_DIR/js.log" | tail -n 1 | awk '{print $3}' || true)"
  todo="$(grep -E '^# todo [0-9]+' "$LOG_DIR/js.log" | tail -n 1 | awk '{print $3}' || true)"
  (( ${passed:-0} > 0 )) || { echo "scripts/test.sh: node --test ran no tests" >&2; return 1; }
  local extra=""
  (( ${skipped:-0} )) && extra="$skipped skipped"
  (( ${todo:-0} )) && extra="${extra:+$extra, }$todo todo"
  record_counts js "$passed" "${failed:-0}" "$extra"
}

stage_python() {
  require_ferry_bin
  # pytest exits 5 when it collected no tests: that is a failure of the harness, and
  # like every other non-zero exit it fails this stage.
  with_log python .venv/bin/python -m pytest tests/clients/python || return $?
  # "==== 18 passed, 1 xfailed in 15.06s ===="
  local line; line="$(grep -E '^=+ .*[0-9]+ (passed|failed).* in [0-9.]+s' "$LOG_DIR/python.log" | tail -n 1 || true)"
  local passed failed extra
  passed="$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+' || echo 0)"
  failed="$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+' || echo 0)"
  extra="$(grep -oE '[0-9]+ (xfailed|xpassed|skipped)' <<<"$line" | paste -sd, - | sed 's/,/, /g' || true)"
  (( passed > 0 )) || { echo "scripts/test.sh: pytest reported no passed tests" >&2; return 1; }
  record_counts python "$passed" "$failed" "$extra"
}

stage_console() {
  require_ferry_bin
  # Fresh screenshots each run (tests/artifacts is gitignored).
  rm -rf tests/artifacts/console
  mkdir -p tests/artifacts/console
  with_log console .venv/bin/python -m pytest tests/console || return $?
  local line; line="$(grep -E '^=+ .*[0-9]+ (passed|failed).* in [0-9.]+s' "$LOG_DIR/console.log" | tail -n 1 || true)"
  local passed failed extra
  passed="$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+' || echo 0)"
  failed="$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+' || echo 0)"
  extra="$(grep -oE '[0-9]+ (xfailed|xpassed|skipped)' <<<"$line" | paste -sd, - | sed 's/,/, /g' || true)"
  (( passed > 0 )) || { echo "scripts/test.sh: pytest reported no passed console tests" >&2; return 1; }
  echo "screenshots: $(ls tests/artifacts/console/*.png 2>/dev/null | wc -l) in tests/artifacts/console/"
  record_counts console "$passed" "$failed" "$extra"
}

# ---------------------------------------------------------------------------------------
header "Ferry tests in $REPO_ROOT (stages: $(for s in "${ALL_STAGES[@]}"; do selected "$s" && printf '%s ' "$s"; done)| CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
echo "rustc: $(rustc --version 2>/dev/null || echo missing); python3: $(python3 --version 2>&1); node: $(node --version 2>/dev/null || echo missing)"

selected deps && run_stage deps "install client-test dependencies (kcat, .venv, npm ci)" stage_deps
selected fmt && run_stage fmt "cargo fmt --all -- --check; import cycles" stage_fmt
selected clippy && run_stage clippy "cargo clippy --workspace --all-targets -- -D warnings; cargo doc -D warnings" stage_clippy
if selected build; then
  run_stage build "cargo build --workspace --all-targets" stage_build
elif selected docs || selected kcat || selected js || selected python || selected console; then
  run_stage build-bin "cargo build -p ferry-cli$(selected docs && echo ' -p ferry-load') (for the client tests and the docs check)" stage_build_bin
fi
selected docs && run_stage docs "commands in README.md and docs/ (scripts/check_doc_commands.sh)" stage_docs
selected rust && run_stage rust "Rust tests (cargo nextest run --workspace)" stage_rust
selected fuzz && run_stage fuzz "fuzz targets, ${FERRY_FUZZ_SECONDS:-20}s each (scripts/fuzz.sh all)" stage_fuzz
if selected kcat || selected js || selected python || selected console; then
  mkdir -p tests/artifacts
  rm -f tests/artifacts/*.node.log
fi
selected kcat && run_stage kcat "kcat (tests/clients/shell/test_kcat.sh)" stage_kcat
selected js && run_stage js "kafkajs (node --test tests/clients/js)" stage_js
selected python && run_stage python "kafka-python + confluent-kafka (pytest tests/clients/python)" stage_python
selected console && run_stage console "web console in headless Chromium (pytest tests/console)" stage_console

header "Summary"
for s in "${STAGE_NAMES[@]}"; do
  printf '  %-10s %5ss  %s\n' "$s" "${STAGE_SECS[$s]}" "${STAGE_COUNTS[$s]:-}"
done
printf '  %-10s %5ss\n' total "$SECONDS"
if [[ -n "$TOTAL_OTHER" ]]; then echo "  not counted below: $TOTAL_OTHER"; fi
echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
