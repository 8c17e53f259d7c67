#!/usr/bin/env python3
"""Reports import circles between sibling modules inside each workspace crate.

Run it from anywhere: `python3 scripts/check_import_cycles.py [--tests]`. Python 3.11 standard
library only. Exit status 0 when every circle found is in ALLOWED below, 1 otherwise.

What is read: every `src/**/*.rs` file of each crate named in the root Cargo.toml's
`members` (fuzz/ is its own workspace and is skipped; so are `src/bin/`). A file's module
path comes from its location: `src/a/b.rs` and `src/a/b/mod.rs` are both `a::b`, and
`lib.rs`/`main.rs` are the crate root.

What counts as an import, with its line:

* `use crate::...;` and `use super::...;` (also `pub use`, nested `{...}` trees, several
  lines), with `super` resolved against the file's module and any inline `mod name { ... }`
  the line sits in;
* `crate::a::b::...` and `super::...` paths written in code (comments are ignored).

A path is resolved to the longest prefix that names a module file; the rest are items.

What is reported: for modules A and B that share a parent P, "A imports B" when any file at or
below A imports B or anything below B. So `a::x` using `a::y::z::T` is an edge x -> y among
the children of `a`, and `a::x` using `b::T` is an edge a -> b among the crate root's. A
module importing its own ancestor or descendant is not an edge (a parent declares its
children, and children may use their parent's items). The strongly connected components of
each parent's graph are the circles; each pair importing the other directly is printed as

    crate: a <-> b (file:line a uses b; file:line b uses a)

and a component of three or more modules is printed once more with one use for each edge
inside it. Code marked `#[cfg(test)]` (a `mod tests { ... }`, a `#[cfg(test)] mod testing;`
file and everything below it, a single item) is left out unless `--tests` is given, because a
unit test using a helper that uses the module under test is not a knot in the design.

ALLOWED lists the circles that existed when this check was written, each with a reason. Fix a
circle, then delete its entry; an entry that no longer matches anything is reported as stale
(a warning, not a failure) so the list only shrinks.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (crate, modules in the circle, only with --tests, reason). Modules are written relative to
# the crate root; a pair is a 2-cycle, three or more names are one strongly connected component.
ALLOWED: list[tuple[str, frozenset[str], bool, str]] = [
    # Circles closed only by unit tests: a `#[cfg(test)]` helper module (controller::testing,
    # log::testutil) uses the module whose tests use it, or a test checks another module.
    (
        "ferry-data-plane",
        frozenset({"controller::execute", "controller::testing"}),
        True,
        "test helper cluster drives execute; execute's tests use the helper",
    ),
    (
        "ferry-data-plane",
        frozenset({"controller::image", "controller::testing"}),
        True,
        "test helper cluster reads the image; image's tests use the helper",
    ),
    (
        "ferry-data-plane",
        frozenset(
            {
                "controller::execute",
                "controller::image",
                "controller::placement",
                "controller::replication",
                "controller::security",
                "controller::testing",
                "controller::topics",
            }
        ),
        True,
        "the controller's unit tests all go through controller::testing",
    ),
    (
        "ferry-data-plane",
        frozenset({"log::batch", "log::testutil"}),
        True,
        "test helpers build batches; batch's tests use the helpers",
    ),
    (
        "ferry-data-plane",
        frozenset({"broker::idempotence", "broker::partition"}),
        True,
        "idempotence's tests drive a PartitionInner, which holds the Producers",
    ),
    (
        "ferry-identity",
        frozenset({"ca", "material"}),
        True,
        "material's tests issue certificates with the CA",
    ),
]

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
CODE_PATH = re.compile(rf"(?<![A-Za-z0-9_:])((?:crate|super)(?:::{IDENT})+)")
USE_START = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+")
INLINE_MOD = re.compile(rf"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+({IDENT})\s*\{{")
VISIBILITY_IN = re.compile(r"pub\(in [^)]*\)")
CFG_TEST = re.compile(r"^\s*#\[cfg\(test\)\]")
MOD_DECLARATION = re.compile(rf"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+({IDENT})\s*;")
STRING = re.compile(r'"(?:\\.|[^"\\])*"')
CHAR = re.compile(r"'(?:\\.|[^'\\])'")


def crates() -> list[tuple[str, Path]]:
    """The workspace members as (package name, directory)."""
    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())
    found = []
    for member in workspace["workspace"]["members"]:
        directory = ROOT / member
        if member.startswith("fuzz") or not (directory / "Cargo.toml").exists():
            continue
        package = tomllib.loads((directory / "Cargo.toml").read_text())["package"]["name"]
        found.append((package, directory))
    return found


def module_of(src: Path, file: Path) -> tuple[str, ...]:
    """The module path of a source file, from its place under src/."""
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts in (["lib"], ["main"]):
        return ()
    if parts[-1] == "mod":
        parts.pop()
    return tuple(parts)


def strip_line(line: str, in_block: bool) -> tuple[str, bool]:
    """The line without strings, chars and comments; and whether a block comment is open."""
    out = []
    i = 0
    while i < len(line):
        if in_block:
            end = line.find("*/", i)
            if end < 0:
                return "".join(out), True
            i, in_block = end + 2, False
            continue
        if line.startswith("//", i):
            break
        if line.startswith("/*", i):
            in_block = True
            i += 2
            continue
        out.append(line[i])
        i += 1
    text = CHAR.sub("' '", STRING.sub('""', "".join(out)))
    return text, in_block


def expand_use(tree: str) -> list[list[str]]:
    """The leaf paths of a use tree: `a::{b, c::{d as e, *}}` -> a::b, a::c::d, a::c."""
    tokens = [t for t in re.findall(rf"\{{|\}}|,|\*|{IDENT}", tree)]
    pos = 0

    def parse(prefix: list[str]) -> list[list[str]]:
        """Parses a comma-separated list of subtrees until `}` or the end."""
        nonlocal pos
        paths: list[list[str]] = []
        current = list(prefix)
        while pos < len(tokens):
            token = tokens[pos]
            pos += 1
            if token == "{":
                paths.extend(parse(current))
                current = None
            elif token in (",", "}"):
                if current is not None and current != prefix:
                    paths.append(current)
                if token == "}":
                    return paths
                current = list(prefix)
            elif token == "as":
                pos += 1  # skip the alias
            elif token == "*":
                paths.append(current)
                current = None
            elif current is not None:
                current = current + [token]
        if current is not None and current != prefix:
            paths.append(current)
        return paths

    return parse([])


def resolve(path: list[str], here: tuple[str, ...], modules: set[tuple[str, ...]]):
    """The module a `crate::`/`super::` path names, or None for anything else."""
    if not path:
        return None
    if path[0] == "crate":
        base, rest = (), path[1:]
    elif path[0] in ("super", "self"):
        base, rest = here, path
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                if not base:
                    return None
                base = base[:-1]
            rest = rest[1:]
    else:
        return None
    target = base
    for segment in rest:
        if target + (segment,) in modules:
            target = target + (segment,)
        else:
            break
    return target


def imports(file: Path, module: tuple[str, ...], modules: set[tuple[str, ...]]):
    """What the file imports, and which of its `mod name;` children are test-only.

    Returns ([(line number, target module, test only)], {child names}). Code is test-only when
    it sits in an item (an inline module, a function, a `use`) marked `#[cfg(test)]`.
    """
    found = []
    test_children: set[str] = set()
    in_block = False
    depth = 0
    # Open items that matter: (inline module name or None, brace depth at opening, test only).
    frames: list[tuple[str | None, int, bool]] = []
    cfg_test = False  # a `#[cfg(test)]` attribute waits for its item
    pending_use: tuple[int, str, bool] | None = None
    for number, raw in enumerate(file.read_text().splitlines(), start=1):
        line, in_block = strip_line(raw, in_block)
        line = VISIBILITY_IN.sub("pub", line)
        here = module + tuple(name for name, _, _ in frames if name is not None)
        in_test = any(test for _, _, test in frames)
        stripped = line.strip()
        if CFG_TEST.match(stripped):
            cfg_test = True
            stripped = CFG_TEST.sub("", stripped).strip()
            line = CFG_TEST.sub("", line)
        if not stripped or stripped.startswith("#["):
            continue
        item_test = cfg_test
        cfg_test = False
        declared = MOD_DECLARATION.match(line)
        if declared and item_test:
            test_children.add(declared.group(1))
        opened = INLINE_MOD.match(line)
        if pending_use is None and USE_START.match(line):
            pending_use = (number, USE_START.sub("", line, count=1), in_test or item_test)
        elif pending_use is not None:
            pending_use = (pending_use[0], pending_use[1] + " " + line, pending_use[2])
        if pending_use is not None:
            if ";" in pending_use[1]:
                start, text, test = pending_use
                for path in expand_use(text.split(";", 1)[0]):
                    target = resolve(path, here, modules)
                    if target is not None:
                        found.append((start, target, test))
                pending_use = None
        else:
            for match in CODE_PATH.finditer(line):
                target = resolve(match.group(1).split("::"), here, modules)
                if target is not None:
                    found.append((number, target, in_test or item_test))
        if opened or (item_test and "{" in line):
            frames.append((opened.group(1) if opened else None, depth, item_test))
        depth += line.count("{") - line.count("}")
        while frames and depth <= frames[-1][1]:
            frames.pop()
    return found, test_children


def components(nodes: list[str], edges: dict[str, dict[str, str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with two or more members, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(edges.get(node, {})):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                result.append(sorted(members))

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return sorted(result)


def circles(include_tests: bool) -> list[tuple[str, frozenset[str], list[str]]]:
    """Each circle as (crate, member modules, printed lines)."""
    found = []
    for crate, directory in crates():
        src = directory / "src"
        files = {
            f: module_of(src, f)
            for f in sorted(src.rglob("*.rs"))
            if "bin" not in f.relative_to(src).parts[:1]
        }
        modules = set(files.values())
        # parent -> source child -> target child -> first evidence "file:line"
        graph: dict[tuple[str, ...], dict[str, dict[str, str]]] = defaultdict(dict)
        scanned = {file: imports(file, module, modules) for file, module in files.items()}
        test_modules = {
            module + (child,)
            for file, module in files.items()
            for child in scanned[file][1]
        }
        for file, module in files.items():
            if not include_tests and any(module[:n] in test_modules for n in range(len(module) + 1)):
                continue
            for number, target, test in scanned[file][0]:
                if test and not include_tests:
                    continue
                common = 0
                while (
                    common < len(module)
                    and common < len(target)
                    and module[common] == target[common]
                ):
                    common += 1
                if common == len(module) or common == len(target):
                    continue  # self, ancestor or descendant
                parent = module[:common]
                source = "::".join(module[: common + 1])
                dest = "::".join(target[: common + 1])
                where = f"{file.relative_to(ROOT)}:{number}"
                graph[parent].setdefault(source, {}).setdefault(dest, where)
        for parent in sorted(graph):
            edges = graph[parent]
            nodes = sorted(set(edges) | {d for ds in edges.values() for d in ds})
            for members in components(nodes, edges):
                for a, b in _pairs(members, edges):
                    line = (
                        f"{crate}: {a} <-> {b} ({edges[a][b]} {a} uses {b}; "
                        f"{edges[b][a]} {b} uses {a})"
                    )
                    found.append((crate, frozenset((a, b)), [line]))
                if len(members) > 2:
                    inside = [
                        f"    {a} -> {b} ({edges[a][b]})"
                        for a in members
                        for b in sorted(edges.get(a, {}))
                        if b in members
                    ]
                    head = f"{crate}: circle of {len(members)}: {', '.join(members)}"
                    found.append((crate, frozenset(members), [head, *inside]))
    return found


def _pairs(members: list[str], edges: dict[str, dict[str, str]]):
    """The pairs of members that import each other directly."""
    for i, a in enumerate(members):
        for b in members[i + 1 :]:
            if b in edges.get(a, {}) and a in edges.get(b, {}):
                yield (a, b)


def main() -> int:
    include_tests = "--tests" in sys.argv[1:]
    allowed = {
        (crate, members): reason
        for crate, members, test_only, reason in ALLOWED
        if include_tests or not test_only
    }
    used = set()
    failed = 0
    for crate, members, lines in circles(include_tests):
        key = (crate, members)
        if key in allowed:
            used.add(key)
            print("allowed: " + lines[0] + f"  [{allowed[key]}]")
            for line in lines[1:]:
                print(line)
        else:
            failed += 1
            print("\n".join(lines))
    for crate, members in sorted(allowed.keys() - used, key=lambda k: (k[0], sorted(k[1]))):
        print(f"warning: stale allowlist entry {crate}: {sorted(members)}", file=sys.stderr)
    if failed:
        print(f"{failed} import circle(s) not in the allowlist", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
