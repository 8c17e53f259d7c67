#!/usr/bin/env python3
"""Checks that the shell commands shown in README.md and docs/*.md match the repository.

Run it through scripts/check_doc_commands.sh (or `FERRY_TEST_ONLY=docs bash scripts/test.sh`).
Python 3.11 standard library only.

What is read: every fenced block whose info string is `sh`, `bash` or `console`. In `sh` and
`bash` blocks every line is a command; in `console` blocks only lines starting with `$ ` are
(the rest is output). Lines ending in `\\` continue, a quote left open continues on the next
line, heredoc bodies are skipped, `# ...` comments are dropped, and a line is split into simple
commands at `|`, `||`, `&&`, `;`, `&`, parentheses and `$(...)`.

What is checked, for each simple command (after leading `NAME=value` assignments and `sudo`,
`exec`, `time`, `nohup`, `env`):

* `ferry ...` (also `$R/ferry`, `./ferry`, any path ending in `/ferry`): nothing is run against
  a server. The check runs `ferry <subcommand...> --help` for each level of the subcommand
  path and requires that every subcommand word exists and that every `--flag` (and `-x`) the
  example uses is listed in the help of the subcommand it reaches. This covers long-running
  commands (`ferry dev`, `ferry node`, `ferry control-plane`, `ferry agent`) and those that need
  a server, without starting anything.
* `ferry-load ...`: the same against the ferry-load binary.
* `bash scripts/dev.sh ARGS` (or `scripts/dev.sh ARGS`): the script must exist and ARGS are
  checked as `ferry dev ARGS` (dev.sh passes them on).
* `scripts/fuzz.sh WORD ...`: the script must exist and WORD must be a subcommand it knows or
  one of the targets in its TARGETS list.
* `cargo ... -p NAME`: NAME must be a package of the repository (a `[package] name` of a
  tracked Cargo.toml); `--manifest-path PATH` must exist.
* any command: an argument that is a repository path (its first component is a top-level entry
  that git tracks, like `scripts/` or `terraform/`) must exist, and so must the program itself
  when it is such a path (`load-tests/scripts/quorum-cluster.sh`). `cd` into a repository path
  moves the base for the rest of the block; `cd` elsewhere stops path checks for the block.

Markers. A block is skipped as an example for real hosts when the nearest non-blank line
before its opening fence is the HTML comment

    <!-- example: real hosts -->

or when its first line is the comment `# on real hosts`. Use it only for a block the checks
above cannot judge; `--help` checks need no real host, so most examples for real hosts need no
marker.

Output (`-v` also prints each command as it is checked): one line per problem, `FILE:LINE: command: problem`, then a summary line
`check_doc_commands: N checks passed, M failed (...)`. Exit status 0 when there are no
problems, 1 when there are, 2 when it cannot run (a binary is missing).

Environment: FERRY_BIN (default ${CARGO_TARGET_DIR:-~/.cache/ferry-target}/debug/ferry) and
FERRY_LOAD_BIN (default: ferry-load next to FERRY_BIN).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MARKER_COMMENT = "<!-- example: real hosts -->"
MARKER_FIRST_LINE = "# on real hosts"
SHELL_LANGS = {"sh", "bash", "console"}
PREFIX_COMMANDS = {"sudo", "exec", "time", "nohup", "env", "if", "then", "else", "elif", "do",
                   "while", "until", "!"}
SEPARATORS = {"|", "||", "&&", ";", "&", "(", ")", ";;", "|&"}
REDIRECTS = {">", ">>", "<", "<<", "<<<", ">&", "<&", ">|", "<>", "&>", "&>>"}
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([A-Za-z0-9_+-]*)")
HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass
class Command:
    """One simple command of a block."""

    file: str
    line: int
    words: list[str]
    cwd: Path | None  # None once a block has left the repository


@dataclass
class Block:
    """One fenced shell block."""

    file: str
    line: int  # the opening fence's line
    lang: str
    lines: list[tuple[int, str]] = field(default_factory=list)
    skipped: bool = False


@dataclass
class Report:
    verbose: bool = False
    passed: int = 0
    problems: list[str] = field(default_factory=list)
    skipped_blocks: list[str] = field(default_factory=list)
    blocks: int = 0
    commands: int = 0

    def ok(self) -> None:
        self.passed += 1

    def fail(self, cmd: Command, message: str) -> None:
        shown = " ".join(cmd.words)
        if len(shown) > 70:
            shown = shown[:67] + "..."
        self.problems.append(f"{cmd.file}:{cmd.line}: {shown}: {message}")


# ---------------------------------------------------------------------------------------------
# Reading the documents


def doc_files() -> list[Path]:
    files = [REPO / "README.md"]
    files += sorted((REPO / "docs").glob("*.md"))
    return [f for f in files if f.is_file()]


def read_blocks(path: Path) -> list[Block]:
    rel = str(path.relative_to(REPO))
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.group(1), m.group(2), m.group(3).lower()
        # Find the closing fence (same character, at least as long).
        j = i + 1
        while j < len(lines):
            close = lines[j].strip()
            if close.startswith(fence[0] * len(fence)) and close.strip(fence[0]) == "":
                break
            j += 1
        if lang in SHELL_LANGS:
            block = Block(rel, i + 1, lang)
            for k in range(i + 1, j):
                text = lines[k]
                if text.startswith(indent):
                    text = text[len(indent):]
                block.lines.append((k + 1, text))
            prev = i - 1
            while prev >= 0 and not lines[prev].strip():
                prev -= 1
            first = next((t.strip() for _, t in block.lines if t.strip()), "")
            if (prev >= 0 and lines[prev].strip() == MARKER_COMMENT) or first == MARKER_FIRST_LINE:
                block.skipped = True
            blocks.append(block)
        i = j + 1
    return blocks


def logical_lines(block: Block) -> list[tuple[int, str]]:
    """Joins continued lines, drops heredoc bodies and console output."""
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    heredoc_end: str | None = None
    for number, text in block.lines:
        if heredoc_end is not None:
            if text.strip() == heredoc_end:
                heredoc_end = None
            continue
        if pending is None:
            if block.lang == "console":
                if not text.startswith("$ "):
                    continue
                text = text[2:]
            pending = (number, text)
        else:
            pending = (pending[0], pending[1] + "\n" + text)
        start, joined = pending
        if joined.endswith("\\"):
            pending = (start, joined[:-1])
            continue
        if not quotes_closed(joined):
            continue
        out.append((start, joined))
        pending = None
        m = HEREDOC.search(strip_comment(joined))
        if m:
            heredoc_end = m.group(2)
    if pending is not None:
        out.append(pending)
    return out


def quotes_closed(text: str) -> bool:
    try:
        shlex.split(text, comments=True)
        return True
    except ValueError:
        return False


def strip_comment(text: str) -> str:
    """The text without a trailing `# comment` (a `#` outside quotes that starts a word)."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t;|&("):
            return text[:i]
    return text


def substitutions(text: str) -> tuple[str, list[str]]:
    """Pulls `$(...)` out of `text`: the text with each replaced by a word, and their insides."""
    inner: list[str] = []
    result = []
    i = 0
    while i < len(text):
        if text.startswith("$(", i) and not text.startswith("$((", i):
            depth, j = 1, i + 2
            while j < len(text) and depth:
                if text[j] == "(":
                    depth += 1
                elif text[j] == ")":
                    depth -= 1
                j += 1
            body = text[i + 2 : j - 1]
            sub_text, sub_inner = substitutions(body)
            inner.append(sub_text)
            inner.extend(sub_inner)
            result.append("SUBSTITUTION")
            i = j
        else:
            result.append(text[i])
            i += 1
    return "".join(result), inner


def simple_commands(text: str) -> list[list[str]]:
    """Splits one logical line into simple commands (lists of words)."""
    text = strip_comment(text)
    text, inner = substitutions(text)
    commands: list[list[str]] = []
    for part in [text, *inner]:
        lexer = shlex.shlex(part, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = ""
        try:
            tokens = list(lexer)
        except ValueError:
            tokens = part.split()
        words: list[str] = []
        skip_next = False
        for token in tokens:
            if skip_next:
                skip_next = False
                continue
            if token in SEPARATORS:
                if words:
                    commands.append(words)
                words = []
            elif token in REDIRECTS:
                skip_next = True
            else:
                words.append(token)
        if words:
            commands.append(words)
    return commands


# ---------------------------------------------------------------------------------------------
# Help pages


@dataclass
class Help:
    """What one `--help` page offers."""

    commands: set[str]
    command_required: bool
    long_flags: dict[str, bool]  # flag -> takes a value
    short_flags: dict[str, bool]


OPTION_LINE = re.compile(r"^ {2,6}(?:-([A-Za-z0-9]),\s+)?--([A-Za-z0-9][A-Za-z0-9-]*)(.*)$")
SHORT_ONLY = re.compile(r"^ {2,6}-([A-Za-z0-9])(?:\s|,|$)(.*)$")
COMMAND_LINE = re.compile(r"^ {2}([a-z0-9][a-z0-9-]*)(\s|$)")


def parse_help(text: str) -> Help:
    section = None
    commands: set[str] = set()
    long_flags: dict[str, bool] = {}
    short_flags: dict[str, bool] = {}
    usage = ""
    for line in text.splitlines():
        if line.startswith("Usage:"):
            usage = line
            continue
        if line and not line[0].isspace():
            section = line.rstrip(":").strip().lower()
            continue
        if section == "commands":
            m = COMMAND_LINE.match(line)
            if m and m.group(1) != "help":
                commands.add(m.group(1))
            elif m:
                commands.add("help")
        elif section == "options":
            m = OPTION_LINE.match(line)
            if m:
                takes_value = m.group(3).lstrip().startswith("<")
                long_flags[m.group(2)] = takes_value
                if m.group(1):
                    short_flags[m.group(1)] = takes_value
                continue
            m = SHORT_ONLY.match(line)
            if m:
                short_flags[m.group(1)] = m.group(2).lstrip().startswith("<")
    return Help(commands, "<COMMAND>" in usage, long_flags, short_flags)


class Binary:
    """A clap binary whose help pages are read once each."""

    def __init__(self, name: str, path: Path):
        self.name = name
        self.path = path
        self.cache: dict[tuple[str, ...], Help | str] = {}

    def label(self, path: tuple[str, ...]) -> str:
        """`ferry cluster create`, as a user would type it."""
        return " ".join((self.name, *path))

    def help(self, path: tuple[str, ...]) -> Help | str:
        if path not in self.cache:
            try:
                out = subprocess.run(
                    [str(self.path), *path, "--help"],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    env={**os.environ, "RUST_BACKTRACE": "0", "NO_COLOR": "1"},
                )
            except (OSError, subprocess.TimeoutExpired) as e:
                self.cache[path] = f"`{self.label(path)} --help` could not run: {e}"
            else:
                if out.returncode != 0:
                    first = (out.stderr or out.stdout).strip().splitlines()[:1]
                    self.cache[path] = (
                        f"`{self.label(path)} --help` failed: {' '.join(first)}"
                    )
                else:
                    self.cache[path] = parse_help(out.stdout)
        return self.cache[path]

    def check(self, report: Report, cmd: Command, args: list[str]) -> None:
        """Checks the subcommand path and every flag of `<binary> args...`."""
        path: tuple[str, ...] = ()
        page = self.help(path)
        if isinstance(page, str):
            report.fail(cmd, page)
            return
        positional_seen = False
        i = 0
        problems = 0
        while i < len(args):
            word = args[i]
            i += 1
            if word == "--":
                break
            if word.startswith("--") and len(word) > 2:
                name, _, value = word[2:].partition("=")
                if name not in page.long_flags:
                    report.fail(
                        cmd,
                        f"`{self.label(path)}` has no flag --{name}"
                        f" (see `{self.label(path)} --help`)",
                    )
                    problems += 1
                elif page.long_flags[name] and not value and i < len(args):
                    i += 1  # its value
                continue
            if word.startswith("-") and len(word) > 1 and not word[1].isdigit():
                letters = word[1:]
                for n, letter in enumerate(letters):
                    if letter not in page.short_flags:
                        report.fail(cmd, f"`{self.label(path)}` has no flag -{letter}")
                        problems += 1
                        break
                    if page.short_flags[letter]:
                        if n == len(letters) - 1 and i < len(args):
                            i += 1
                        break
                continue
            # A word: a subcommand while the page has some, else a positional argument.
            if page.commands and not positional_seen:
                if word in page.commands:
                    path = path + (word,)
                    page = self.help(path)
                    if isinstance(page, str):
                        report.fail(cmd, page)
                        return
                    continue
                if page.command_required:
                    report.fail(
                        cmd,
                        f"`{self.label(path)}` has no subcommand {word!r}"
                        f" (it has: {', '.join(sorted(page.commands - {'help'}))})",
                    )
                    return
            positional_seen = True
        if page.command_required and not positional_seen and not any(
            a in ("--help", "-h", "--version", "-V") for a in args
        ):
            report.fail(
                cmd,
                f"`{self.label(path)}` needs a subcommand"
                f" ({', '.join(sorted(page.commands - {'help'}))})",
            )
            return
        if problems == 0:
            report.ok()


# ---------------------------------------------------------------------------------------------
# The checks


def tracked_top_level() -> set[str]:
    out = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    return {line.split("/", 1)[0] for line in out.splitlines() if line}


def package_names() -> set[str]:
    out = subprocess.run(
        ["git", "ls-files", "*Cargo.toml", "Cargo.toml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = set()
    for rel in out.splitlines():
        section = None
        for line in (REPO / rel).read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line.startswith("["):
                section = line
            elif section == "[package]":
                m = re.match(r'name\s*=\s*"([^"]+)"', line)
                if m:
                    names.add(m.group(1))
    return names


def fuzz_words() -> set[str]:
    script = (REPO / "scripts" / "fuzz.sh").read_text(encoding="utf-8")
    m = re.search(r"^TARGETS=\(([^)]*)\)", script, re.M)
    targets = set(m.group(1).split()) if m else set()
    return targets | {"all", "build", "seeds", "list"}


class Checker:
    def __init__(self, ferry: Binary, ferry_load: Binary):
        self.ferry = ferry
        self.ferry_load = ferry_load
        self.top = tracked_top_level()
        self.packages = package_names()
        self.fuzz = fuzz_words()
        self.report = Report()

    def is_repo_path(self, word: str, cwd: Path | None) -> Path | None:
        """The path `word` names in the repository, if it looks like one."""
        if cwd is None or not word or word[0] in "/~$-<{" or any(c in word for c in "$*?<>{}`="):
            return None
        if word.startswith("./"):
            word = word[2:]
        first = word.split("/", 1)[0]
        if cwd == REPO and first in self.top and ("/" in word or "." in word):
            return REPO / word
        if cwd != REPO and "/" in word and (cwd / first).exists():
            return cwd / word
        return None

    def check_path(self, cmd: Command, word: str) -> bool:
        path = self.is_repo_path(word, cmd.cwd)
        if path is None:
            return False
        if path.exists():
            self.report.ok()
        else:
            self.report.fail(cmd, f"{word} does not exist in the repository")
        return True

    def check(self, cmd: Command) -> Path | None:
        """Checks one simple command; returns the block's working directory after it."""
        words = list(cmd.words)
        while words and (ASSIGNMENT.match(words[0]) or words[0] in PREFIX_COMMANDS):
            words.pop(0)
        if not words:
            return cmd.cwd
        self.report.commands += 1
        if self.report.verbose:
            print(f"{cmd.file}:{cmd.line}: {' '.join(words)}")
        program, args = words[0], words[1:]
        base = program.rsplit("/", 1)[-1]

        if program == "cd":
            target = args[0] if args else ""
            path = self.is_repo_path(target, cmd.cwd)
            if path is None:
                return None
            if path.is_dir():
                self.report.ok()
                return path
            self.report.fail(cmd, f"{target} is not a directory of the repository")
            return None

        if base == "ferry":
            self.ferry.check(self.report, cmd, args)
            return cmd.cwd
        if base == "ferry-load":
            self.ferry_load.check(self.report, cmd, args)
            return cmd.cwd

        if program in ("bash", "sh") and args and not args[0].startswith("-"):
            program, args = args[0], args[1:]
        script = program[2:] if program.startswith("./") else program
        if cmd.cwd == REPO and script == "scripts/dev.sh":
            self.check_path(cmd, script)
            self.ferry.check(self.report, cmd, ["dev", *args])
            return cmd.cwd
        if cmd.cwd == REPO and script == "scripts/fuzz.sh":
            self.check_path(cmd, script)
            if args and args[0] not in self.fuzz:
                self.report.fail(
                    cmd, f"scripts/fuzz.sh knows no target or subcommand {args[0]!r}"
                )
            elif args:
                self.report.ok()
            return cmd.cwd
        self.check_path(cmd, program)

        if program == "cargo":
            i = 0
            while i < len(args):
                word = args[i]
                value = None
                if word in ("-p", "--package", "--manifest-path") and i + 1 < len(args):
                    value = args[i + 1]
                    i += 1
                elif word.startswith(("--package=", "--manifest-path=")):
                    word, value = word.split("=", 1)
                i += 1
                if value is None:
                    continue
                if word in ("-p", "--package"):
                    if value in self.packages:
                        self.report.ok()
                    else:
                        self.report.fail(cmd, f"no package {value!r} in the repository")
                elif not self.check_path(cmd, value):
                    self.report.fail(cmd, f"--manifest-path {value} is not a repository path")
            return cmd.cwd

        for word in args:
            if word.startswith("--") and "=" in word:
                word = word.split("=", 1)[1]
            self.check_path(cmd, word)
        return cmd.cwd

    def run(self) -> Report:
        for path in doc_files():
            for block in read_blocks(path):
                self.report.blocks += 1
                if block.skipped:
                    self.report.skipped_blocks.append(f"{block.file}:{block.line}")
                    continue
                cwd: Path | None = REPO
                for number, text in logical_lines(block):
                    for words in simple_commands(text):
                        cwd = self.check(Command(block.file, number, words, cwd))
        return self.report


def main() -> int:
    target = Path(os.environ.get("CARGO_TARGET_DIR") or Path.home() / ".cache" / "ferry-target")
    ferry_bin = Path(os.environ.get("FERRY_BIN") or target / "debug" / "ferry")
    load_bin = Path(os.environ.get("FERRY_LOAD_BIN") or ferry_bin.parent / "ferry-load")
    missing = [p for p in (ferry_bin, load_bin) if not os.access(p, os.X_OK)]
    if missing:
        for p in missing:
            print(f"check_doc_commands: no executable at {p} (build it: cargo build -p "
                  f"{'ferry-cli' if p == ferry_bin else 'ferry-load'}; or set "
                  f"{'FERRY_BIN' if p == ferry_bin else 'FERRY_LOAD_BIN'})", file=sys.stderr)
        return 2
    checker = Checker(Binary("ferry", ferry_bin), Binary("ferry-load", load_bin))
    checker.report.verbose = "-v" in sys.argv[1:] or "--verbose" in sys.argv[1:]
    report = checker.run()
    for problem in report.problems:
        print(problem)
    pages = len(checker.ferry.cache) + len(checker.ferry_load.cache)
    print(
        f"check_doc_commands: {report.passed} checks passed, {len(report.problems)} failed "
        f"({len(doc_files())} files, {report.blocks} shell blocks, {report.commands} commands, "
        f"{pages} help pages read, {len(report.skipped_blocks)} blocks skipped as real-host "
        f"examples{': ' + ', '.join(report.skipped_blocks) if report.skipped_blocks else ''})"
    )
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
