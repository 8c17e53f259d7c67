//! A small golden-script runner for the sans-IO cores (test-only).
//!
//! A golden script is a text file holding one scenario: commands fed to a state machine, each
//! followed by the exact text its driver renders (a response, the records written, the state).
//! The runner replays every script of a directory and compares the rendered text with the
//! expectation, line for line. It is the idea of toydb's `testscripts/` and raft-rs's
//! `datadriven`, with a smaller format and no dependency.
//!
//! The drivers live beside the state machines they drive: `controller::golden` (scripts in
//! `data-plane/tests/golden/controller/`), `group::golden` (`.../golden/group/`) and
//! `security::golden` (the authorizer, `.../golden/authorizer/`). Each documents its own
//! commands.
//!
//! # Format
//!
//! ```text
//! # One sentence stating the property the scenario shows (required first line).
//! # More comment lines may follow; comments and blank lines between blocks are kept.
//!
//! command positional key=value flag
//! ---
//! the expected output, one or more lines
//! (the block ends at a blank line or the end of the file)
//!
//! next-command
//! ---
//! ...
//! ```
//!
//! - A command is one line: a name, then arguments separated by spaces. An argument is
//!   `key=value` or a bare word (a positional value or a flag; the driver decides).
//! - `---` follows every command; the lines after it, up to a blank line, are the expectation.
//!   Drivers never render an empty line, and render `ok` (or similar) rather than nothing.
//! - A script that names an unknown command or a malformed argument fails with its file and
//!   line: that is a bug in the script, not an outcome.
//!
//! # Running and updating
//!
//! `cargo test -p ferry-data-plane --lib golden` runs every script. A mismatch fails the test
//! with `file:line`, the command, and a line diff of its block (`  - ` expected only, `  + `
//! actual only, four spaces for both). Every mismatching block of every script is reported,
//! not only the first.
//!
//! `UPDATE_GOLDEN=1 cargo test -p ferry-data-plane --lib golden` rewrites each expectation in
//! place with the actual output (a command written without `---` gets one). Review the
//! `git diff` afterwards: the diff *is* the behaviour change.
//!
//! # Adding a scenario
//!
//! Write `tests/golden/<machine>/<scenario_name>.txt` with the property line and the commands,
//! each followed by `---` and nothing else; run with `UPDATE_GOLDEN=1`; read the generated
//! output and check it shows the property (the runner only knows what the code does, not what
//! it should do); commit the script. A new command goes into the driver's `run`, with a line in
//! its module docs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One command line of a script, parsed.
#[derive(Debug, Clone)]
pub struct Command {
    /// The first word.
    pub name: String,
    /// Bare words after the name, in order.
    pub positional: Vec<String>,
    /// `key=value` arguments.
    pub named: BTreeMap<String, String>,
}

impl Command {
    /// Parses one command line.
    pub fn parse(line: &str) -> Self {
        let mut words = line.split_whitespace();
        let name = words.next().unwrap_or_default().to_string();
        let mut positional = Vec::new();
        let mut named = BTreeMap::new();
        for word in words {
            match word.split_once('=') {
                Some((key, value)) => {
                    named.insert(key.to_string(), value.to_string());
                }
                None => positional.push(word.to_string()),
            }
        }
        Self {
            name,
            positional,
            named,
        }
    }

    /// The positional argument at `index`, or an error naming it.
    pub fn arg(&self, index: usize, what: &str) -> Result<&str, String> {
        self.positional
            .get(index)
            .map(String::as_str)
            .ok_or_else(|| format!("{}: missing {what} (argument {})", self.name, index + 1))
    }

    /// Whether the bare word `flag` is among the arguments.
    pub fn flag(&self, flag: &str) -> bool {
        self.positional.iter().any(|p| p == flag)
    }

    /// The `key=value` argument parsed as `T`, if present.
    pub fn get<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, String> {
        self.named
            .get(key)
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("{key}={v}: not a valid value"))
            })
            .transpose()
    }

    /// The `key=value` argument as a comma-separated list (`key=` is the empty list).
    pub fn list<T: std::str::FromStr>(&self, key: &str) -> Result<Option<Vec<T>>, String> {
        let Some(value) = self.named.get(key) else {
            return Ok(None);
        };
        value
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse()
                    .map_err(|_| format!("{key}={value}: bad item {s:?}"))
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }
}

/// A state machine driven by script commands; one fresh driver per script.
pub trait Driver {
    /// Runs `command` and renders its outcome (never an empty line). `Err` means the script
    /// itself is wrong (unknown command, bad argument), not that the state machine refused.
    fn run(&mut self, command: &Command) -> Result<String, String>;
}

/// One command block of a script: where it is and what it expects.
struct Block {
    /// Line index (0-based) of the command.
    command: usize,
    /// Line index of `---`, if the script has one.
    separator: Option<usize>,
    /// Line range of the expected output (empty when there is none).
    expected: std::ops::Range<usize>,
}

/// Splits a script into its command blocks.
fn blocks(lines: &[&str]) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.is_empty() || line.starts_with('#') {
            i += 1;
            continue;
        }
        let command = i;
        i += 1;
        let separator = (i < lines.len() && lines[i].trim() == "---").then_some(i);
        if separator.is_some() {
            i += 1;
        }
        let start = i;
        if separator.is_some() {
            while i < lines.len() && !lines[i].trim().is_empty() {
                i += 1;
            }
        }
        blocks.push(Block {
            command,
            separator,
            expected: start..i,
        });
    }
    blocks
}

/// A line diff of `expected` against `actual` (longest common subsequence): `  - ` lines only
/// expected, `  + ` lines only actual, `    ` lines in both.
fn diff(expected: &[&str], actual: &[&str]) -> Vec<String> {
    let (n, m) = (expected.len(), actual.len());
    // common[i][j]: the longest common subsequence of expected[i..] and actual[j..].
    let mut common = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if expected[i] == actual[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            out.push(format!("    {}", expected[i]));
            (i, j) = (i + 1, j + 1);
        } else if j == m || (i < n && common[i + 1][j] >= common[i][j + 1]) {
            out.push(format!("  - {}", expected[i]));
            i += 1;
        } else {
            out.push(format!("  + {}", actual[j]));
            j += 1;
        }
    }
    out
}

/// Replays one script with a fresh driver. Returns the mismatch report (empty when every
/// block matches) and the script text with actual outputs in place.
fn run_script(path: &Path, text: &str, driver: &mut dyn Driver) -> (String, String) {
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.first().is_some_and(|l| l.starts_with("# ")),
        "{}:1: a script opens with a `# ` line stating its property",
        path.display()
    );
    let mut report = String::new();
    let mut rewritten: Vec<String> = Vec::new();
    let mut copied = 0;
    for block in blocks(&lines) {
        let command = Command::parse(lines[block.command]);
        let actual = driver.run(&command).unwrap_or_else(|e| {
            panic!("{}:{}: {e}", path.display(), block.command + 1);
        });
        assert!(
            !actual.lines().any(|l| l.trim().is_empty()),
            "{}:{}: the driver rendered an empty line",
            path.display(),
            block.command + 1
        );
        let expected = lines[block.expected.clone()].join("\n");
        if actual != expected {
            let _ = writeln!(
                report,
                "{}:{}: {}",
                path.display(),
                block.command + 1,
                lines[block.command]
            );
            if block.separator.is_none() {
                let _ = writeln!(report, "  (no `---` and no expectation)");
            }
            let expected: Vec<&str> = expected.lines().collect();
            let actual: Vec<&str> = actual.lines().collect();
            for line in diff(&expected, &actual) {
                let _ = writeln!(report, "{line}");
            }
        }
        rewritten.extend(lines[copied..=block.command].iter().map(|l| l.to_string()));
        rewritten.push("---".to_string());
        rewritten.extend(actual.lines().map(str::to_string));
        copied = block.expected.end;
        // Output runs to a blank line, so keep one between it and whatever follows.
        if lines.get(copied).is_some_and(|l| !l.trim().is_empty()) {
            rewritten.push(String::new());
        }
    }
    rewritten.extend(lines[copied..].iter().map(|l| l.to_string()));
    (report, rewritten.join("\n") + "\n")
}

/// This package's directory as the test runner reports it when the test runs (cargo and
/// nextest set `CARGO_MANIFEST_DIR` for the test process), falling back to the directory it was
/// compiled in. A test binary reused from a shared target directory by another checkout then
/// still reads this checkout's files.
pub(crate) fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Runs every `*.txt` script under `data-plane/tests/golden/<dir>/`, each with a driver from
/// `new_driver`, and panics with a report of every mismatch. With `UPDATE_GOLDEN=1` it
/// rewrites the mismatching scripts instead.
pub fn run_dir(dir: &str, mut new_driver: impl FnMut() -> Box<dyn Driver>) {
    let root = manifest_dir().join("tests/golden").join(dir);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no scripts in {}", root.display());
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut failures = String::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).expect("a readable script");
        let relative = path.strip_prefix(manifest_dir()).unwrap_or(path);
        let (report, rewritten) = run_script(relative, &text, new_driver().as_mut());
        if report.is_empty() {
            continue;
        }
        if update {
            std::fs::write(path, rewritten).expect("a writable script");
            eprintln!("updated {}", relative.display());
        } else {
            failures.push_str(&report);
        }
    }
    assert!(
        failures.is_empty(),
        "golden scripts differ (rerun with UPDATE_GOLDEN=1 to accept, then review the diff):\n\
         {failures}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Echoes its command back, or refuses `bad`.
    struct Echo;

    impl Driver for Echo {
        fn run(&mut self, command: &Command) -> Result<String, String> {
            match command.name.as_str() {
                "bad" => Err("bad command".into()),
                _ => Ok(format!("{} {:?}", command.name, command.positional)),
            }
        }
    }

    #[test]
    fn matching_scripts_report_nothing_and_mismatches_name_the_line() {
        let text = "# p\n\necho a\n---\necho [\"a\"]\n\necho b\n---\nwrong\n";
        let (report, rewritten) = run_script(Path::new("s.txt"), text, &mut Echo);
        assert_eq!(report, "s.txt:7: echo b\n  - wrong\n  + echo [\"b\"]\n");
        assert_eq!(
            rewritten,
            "# p\n\necho a\n---\necho [\"a\"]\n\necho b\n---\necho [\"b\"]\n"
        );
    }

    #[test]
    fn a_command_without_expectation_gets_one_on_rewrite() {
        let text = "# p\necho x\n# trailing comment\n";
        let (report, rewritten) = run_script(Path::new("s.txt"), text, &mut Echo);
        assert!(report.contains("no `---`"), "{report}");
        assert_eq!(
            rewritten,
            "# p\necho x\n---\necho [\"x\"]\n\n# trailing comment\n"
        );
    }

    #[test]
    #[should_panic(expected = "s.txt:2: bad command")]
    fn a_bad_command_panics_with_its_line() {
        run_script(Path::new("s.txt"), "# p\nbad\n---\n", &mut Echo);
    }
}
