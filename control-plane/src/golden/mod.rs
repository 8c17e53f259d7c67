//! Golden scripts for the control plane's deterministic cores: the store's state machine
//! ([`crate::store::state`]) and reconcile planning ([`crate::reconcile::plan`]). Test-only.
//!
//! A script is a scenario told as commands, each followed by exactly what it renders; the
//! runner replays the commands against a fresh [`world::World`] (a [`crate::store::MemoryStore`]
//! on a pinned clock, a [`crate::reconcile::Reconciler`], and simulated agents) and compares
//! every rendered output with the one written in the file, line for line. This is the shape of
//! toydb's `testscripts` and raft-rs's datadriven tests: the file shows the scenario and its
//! outcome, so a change in behaviour shows up as a reviewable diff of text.
//!
//! # Where they live
//!
//! `control-plane/tests/golden/store/*.txt` and `control-plane/tests/golden/reconcile/*.txt`,
//! one scenario per file, named after it. The two directories share one command language
//! ([`world`]); they differ only in what they exercise.
//!
//! # Format
//!
//! ```text
//! # A created cluster becomes ACTIVE once every controller and broker runs.
//! hosts a b c
//! ---
//! host h-a zone=a 10.0.0.1 40000-40099 UNKNOWN gen=0 applied=0
//! host h-b zone=b 10.0.0.2 40000-40099 UNKNOWN gen=0 applied=0
//! host h-c zone=c 10.0.0.3 40000-40099 UNKNOWN gen=0 applied=0
//!
//! # A comment between blocks is kept as it is.
//! create-cluster t1 orders
//! ---
//! started cl-4 op-4
//! ```
//!
//! - The first line is a `#` comment stating the property the scenario shows.
//! - A block is one command line, a line `---`, then the expected output up to a blank line
//!   (or the end of the file). A command that has nothing to say renders `ok`; a refused one
//!   renders `error: ` and the error's sentence. Outputs never contain blank lines.
//! - Outside blocks, blank lines and `#` comments are free.
//! - A command is a name, positional arguments and `key=value` options, split on spaces. Ids
//!   may be written short (`cl-1` for `cl-0000000000000001`) and are rendered short; they
//!   are the store's log index in hex, so every command that reaches the store (a refused
//!   one too) moves the next id on.
//! - Each command renders what a reader needs to check it: a started operation's ids, a
//!   cluster's state, version, placement and state info, an operation's state, progress and
//!   steps, a host's health, generations, assignments (with the first 8 characters of their
//!   config fingerprint) and reported nodes, and for `plan` the [`crate::reconcile::Effect`]s
//!   `decide` returns. Lists are in the store's order (names, ids, newest first), which is
//!   deterministic.
//!
//! # Running and updating
//!
//! `cargo test -p ferry-control-plane --lib golden` runs every script; a mismatch names the
//! file and the line of the command, and shows the expected and the actual output. With
//! `UPDATE_GOLDEN=1` the runner instead rewrites each file's outputs with what the commands
//! render now: review that diff before committing it.

mod world;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One piece of a script file, in file order.
#[derive(Debug)]
enum Piece {
    /// A comment or blank line outside any block, kept verbatim.
    Verbatim(String),
    /// A command and the output expected from it.
    Block {
        /// The 1-based line of the command.
        line: usize,
        /// The command line.
        command: String,
        /// The expected output lines.
        expected: Vec<String>,
    },
}

/// Splits a script into pieces. Panics, naming the file and line, on a malformed one.
fn parse(path: &Path, text: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("# "),
        "{}:1: a script opens with a `# ` line stating its property",
        path.display()
    );
    while let Some((index, line)) = lines.next() {
        if line.trim().is_empty() || line.starts_with('#') {
            pieces.push(Piece::Verbatim(line.to_owned()));
            continue;
        }
        let separator = lines.next().map(|(_, l)| l);
        assert_eq!(
            separator,
            Some("---"),
            "{}:{}: a command is followed by a line `---`",
            path.display(),
            index + 2
        );
        let mut expected = Vec::new();
        while let Some((_, output)) = lines.peek() {
            if output.trim().is_empty() {
                break;
            }
            expected.push(output.to_string());
            lines.next();
        }
        pieces.push(Piece::Block {
            line: index + 1,
            command: line.to_owned(),
            expected,
        });
    }
    pieces
}

/// The text of a script with `actual` outputs in place of the expected ones.
fn rewrite(pieces: &[Piece], actual: &[Vec<String>]) -> String {
    let mut text = String::new();
    let mut outputs = actual.iter();
    for piece in pieces {
        match piece {
            Piece::Verbatim(line) => writeln!(text, "{line}").unwrap(),
            Piece::Block { command, .. } => {
                writeln!(text, "{command}\n---").unwrap();
                for line in outputs.next().expect("one output per block") {
                    writeln!(text, "{line}").unwrap();
                }
            }
        }
    }
    text
}

/// This package's directory as the test runner reports it when the test runs (cargo and
/// nextest set `CARGO_MANIFEST_DIR` for the test process), falling back to the directory it was
/// compiled in. A test binary reused from a shared target directory by another checkout then
/// still reads this checkout's files.
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// `path` from the workspace root, as a reader finds the file.
fn shown(path: &Path) -> &Path {
    let manifest = manifest_dir();
    let workspace = manifest.parent().unwrap();
    path.strip_prefix(workspace).unwrap_or(path)
}

/// Runs one script; returns the description of every mismatch (empty if it passes). In update
/// mode, rewrites the file instead and returns nothing.
fn run_script(path: &Path, update: bool) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let pieces = parse(path, &text);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut world = world::World::new();
    let mut mismatches = Vec::new();
    let mut actual = Vec::new();
    for piece in &pieces {
        let Piece::Block {
            line,
            command,
            expected,
        } = piece
        else {
            continue;
        };
        let output = runtime.block_on(world.run(command));
        let output: Vec<String> = output.lines().map(str::to_owned).collect();
        assert!(
            output.iter().all(|l| !l.trim().is_empty()),
            "{}:{line}: `{command}` rendered a blank line",
            path.display()
        );
        if &output != expected {
            let mut report = format!("{}:{line}: `{command}`\n", shown(path).display());
            for l in expected {
                writeln!(report, "-{l}").unwrap();
            }
            for l in &output {
                writeln!(report, "+{l}").unwrap();
            }
            mismatches.push(report);
        }
        actual.push(output);
    }
    if update {
        let rewritten = rewrite(&pieces, &actual);
        if rewritten != text {
            std::fs::write(path, rewritten).unwrap();
        }
        return Vec::new();
    }
    mismatches
}

/// Runs every `*.txt` script in `tests/golden/<dir>`, failing with every mismatch found.
fn run_dir(dir: &str) {
    let root = manifest_dir().join("tests/golden").join(dir);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|err| panic!("{}: {err}", root.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no scripts in {}", root.display());
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mismatches: Vec<String> = paths.iter().flat_map(|p| run_script(p, update)).collect();
    assert!(
        mismatches.is_empty(),
        "{} golden block(s) differ (- expected, + actual; UPDATE_GOLDEN=1 rewrites them):\n\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn golden_store() {
    run_dir("store");
}

#[test]
fn golden_reconcile() {
    run_dir("reconcile");
}
