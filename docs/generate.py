"""Regenerate the command outputs shown in README.md and docs/*.md from real runs.

    python docs/generate.py            # rewrite the blocks whose output changed
    python docs/generate.py --all      # rewrite every block with this run's output
    python docs/generate.py --check    # rewrite nothing; exit 1 listing the blocks that drifted

A generated block is a marker comment followed by a fenced code block:

    <!-- gradcmp-output: gradcmp run -b native --dtype float64 -->
    ```
    $ gradcmp run -b native --dtype float64
    ...what the command printed...
    ```

The script replaces the fenced block's contents with `$ COMMAND`, the command's stdout and, when
it exits non-zero, a last line `(exit code N)`. A command ending in `2>&1` also records stderr.
Commands start with `gradcmp`, which runs as the entry point of the Python that runs this
script (`.venv/bin/gradcmp` when the repository has a `.venv`), from the repository root, with
COLUMNS=80 and without the variables that change what gradcmp prints (GITHUB_STEP_SUMMARY,
GRADCMP_DEBUG). Trailing spaces are dropped from every line.

A block has drifted when `normalise` of what it shows differs from `normalise` of what the
command prints now. `normalise` hides only what legitimately varies between two runs of the
same code; see its docstring. tests/test_docs_show_real_outputs.py uses these functions.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = 80
TIMEOUT = 600  # seconds one command may take
MARKER = re.compile(r"^<!-- gradcmp-output: (?P<command>.+?) -->\n", re.MULTILINE)
FENCE = re.compile(r"(?P<fence>`{3,}|~{3,})[^\n]*\n")
EXIT_LINE = re.compile(r"^\(exit code (-?\d+)\)$")
GRID_WIDTH = re.compile(r"(the grid needs )\d+( columns)")
DROPPED_VARIABLES = ("GITHUB_STEP_SUMMARY", "GRADCMP_DEBUG", "FORCE_COLOR")


def doc_files() -> list[Path]:
    """The Markdown files whose blocks are generated: README.md and docs/*.md."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclass(frozen=True)
class Block:
    """One generated block: the command, and where its contents sit in the file's text."""

    path: Path
    line: int  # 1-based line of the marker comment
    command: str
    start: int  # offset of the first character inside the fence
    end: int  # offset of the closing fence
    shown: str  # the contents as the file has them

    @property
    def name(self) -> str:
        path = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{path}:{self.line}"


def find_blocks(path: Path, text: str | None = None) -> list[Block]:
    """Every marker in the file with the fenced block that follows it."""
    text = path.read_text(encoding="utf-8") if text is None else text
    blocks = []
    for marker in MARKER.finditer(text):
        line = text.count("\n", 0, marker.start()) + 1
        fence = FENCE.match(text, marker.end())
        if fence is None:
            raise ValueError(f"{path}:{line}: a gradcmp-output marker without a fenced block")
        closing = re.compile(rf"^{re.escape(fence['fence'])}[ \t]*$", re.MULTILINE)
        close = closing.search(text, fence.end())
        if close is None:
            raise ValueError(f"{path}:{line}: the fenced block after the marker is not closed")
        shown = text[fence.end() : close.start()]
        blocks.append(Block(path, line, marker["command"], fence.end(), close.start(), shown))
    return blocks


def argv_for(command: str) -> tuple[list[str], bool]:
    """The argv to run, and whether stderr is recorded too (a trailing `2>&1`)."""
    words = shlex.split(command)
    with_stderr = bool(words) and words[-1] == "2>&1"
    if with_stderr:
        words = words[:-1]
    if not words or words[0] != "gradcmp":
        raise ValueError(f"a generated command starts with 'gradcmp': {command!r}")
    entry_point = Path(sys.executable).parent / "gradcmp"
    venv = ROOT / ".venv" / "bin" / "gradcmp"
    if venv.exists():
        entry_point = venv
    if not entry_point.exists():  # an environment without the script: the module does the same
        return [sys.executable, "-m", "gradcmp", *words[1:]], with_stderr
    return [str(entry_point), *words[1:]], with_stderr


def run(command: str) -> str:
    """Run one command as the docs show it; return the block's new contents."""
    argv, with_stderr = argv_for(command)
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_VARIABLES}
    env["COLUMNS"] = str(COLUMNS)
    done = subprocess.run(
        argv,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if with_stderr else subprocess.PIPE,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT,
    )
    return render(command, done.stdout, done.returncode)


def render(command: str, output: str, returncode: int) -> str:
    """A block's contents: `$ COMMAND`, the output without trailing spaces, the exit code."""
    lines = [f"$ {command}", *(line.rstrip() for line in output.rstrip().splitlines())]
    if returncode != 0:
        lines.append(f"(exit code {returncode})")
    return "\n".join(lines) + "\n"


# What varies between two runs of the same code, and is hidden before blocks are compared.
TIME = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:e[-+]?\d+)? ?(?:ns|µs|us|ms|s|min)(?![\w/])")
VERSION = re.compile(r"\b(python|gradcmp|numpy|torch|jax|jaxlib) v?\d+\.\d+[\w.+-]*", re.I)
RULE = re.compile(r"([─━═\-=])\1{2,}")
SPACES = re.compile(r"[ \t]+")
JSON_TIMES = ("seconds", "compile_seconds", "startup_seconds", "setup_seconds")


def normalise(contents: str) -> str:
    """A block's contents with what legitimately varies from run to run hidden.

    - times: `0.36 ms`, `1.23 s`, `2 min` become `<time>`; in JSON, the values of `timings`,
      `seconds`, `compile_seconds`, `startup_seconds`, `setup_seconds`, `environment` and the
      top-level `gradcmp` version become `"<varies>"`;
    - versions: `torch 2.13.0+cpu` becomes `torch <version>` (also python, gradcmp, numpy, jax,
      jaxlib);
    - paths: the repository's absolute path becomes `<repo>`, a path in the temporary
      directory `<tmp>`;
    - layout: runs of spaces become one space and runs of a rule character (`───`, `---`) three
      characters, so that a time one digit longer, which widens its column, is no drift; for the
      same reason the width a grid needs (`the grid needs 120 columns`) becomes `<width>`.

    Everything else — every value, ulp, ratio, verdict, word and line — must match.
    """
    lines = contents.rstrip("\n").split("\n")
    command = lines[0] if lines and lines[0].startswith("$ ") else None
    exit_line = lines[-1] if lines and EXIT_LINE.match(lines[-1]) else None
    body = "\n".join(lines[1 if command else 0 : -1 if exit_line else None])
    body = _normalise_json(body)
    body = body.replace(str(ROOT), "<repo>")
    body = re.sub(re.escape(tempfile.gettempdir()) + r"/[^\s'\":,)]*", "<tmp>", body)
    body = TIME.sub("<time>", body)
    body = VERSION.sub(lambda m: f"{m[1]} <version>", body)
    body = RULE.sub(lambda m: m[1] * 3, body)
    body = GRID_WIDTH.sub(r"\1<width>\2", body)
    body = "\n".join(SPACES.sub(" ", line).strip() for line in body.split("\n"))
    return "\n".join(x for x in (command, body, exit_line) if x is not None)


def _normalise_json(body: str) -> str:
    """A JSON report with its timings and environment hidden; any other text as it is."""
    if not body.lstrip().startswith("{"):
        return body
    try:
        report = json.loads(body)
    except ValueError:
        return body
    return json.dumps(_hide_varying(report, top=True), indent=2, ensure_ascii=False)


def _hide_varying(value, top: bool = False):
    if isinstance(value, list):
        return [_hide_varying(v) for v in value]
    if not isinstance(value, dict):
        return value
    hidden = {}
    for key, v in value.items():
        if key in ("timings", "environment") or key in JSON_TIMES or (top and key == "gradcmp"):
            hidden[key] = _hide_leaves(v)
        else:
            hidden[key] = _hide_varying(v)
    return hidden


def _hide_leaves(value):
    if isinstance(value, dict):
        return {k: _hide_leaves(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hide_leaves(v) for v in value]
    return "<varies>" if value is not None else None


def drifted(shown: str, now: str) -> bool:
    """Whether a block that shows `shown` must change to show what the command prints now."""
    return normalise(shown) != normalise(now)


def diff(block: Block, now: str) -> str:
    """The lines that drifted, as the block shows them (-) and as the command prints them now
    (+); lines that differ only in what `normalise` hides are left out."""
    shown, current = block.shown.splitlines(), now.splitlines()
    matcher = difflib.SequenceMatcher(
        None, [_line_key(x) for x in shown], [_line_key(x) for x in current], autojunk=False
    )
    out = [f"--- {block.name} (shown)", f"+++ {block.command} (now)"]
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            out.append(f"@@ shown line {i1 + 1}, now line {j1 + 1} @@")
            out += [f"-{x}" for x in shown[i1:i2]] + [f"+{x}" for x in current[j1:j2]]
    return "\n".join(out) + "\n"


def _line_key(line: str) -> str:
    """One line as `normalise` sees it (the JSON-wide rules aside)."""
    return normalise(line if not line.startswith("$ ") else " " + line)


def run_all(commands: list[str]) -> dict[str, str]:
    """Each distinct command's new block contents; two at a time (they are mostly start-up)."""
    distinct = list(dict.fromkeys(commands))
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(distinct, pool.map(run, distinct)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--check", action="store_true", help="exit 1 if a block drifted")
    what.add_argument("--all", action="store_true", help="rewrite every block")
    args = parser.parse_args(argv)

    blocks = {path: find_blocks(path) for path in doc_files()}
    outputs = run_all([b.command for found in blocks.values() for b in found])
    stale = 0
    for path, found in blocks.items():
        changed = [(b, outputs[b.command]) for b in found if drifted(b.shown, outputs[b.command])]
        stale += len(changed)
        if args.check:
            for block, now in changed:
                print(f"{block.name}: drifted: {block.command}\n{diff(block, now)}")
            continue
        rewrite = found if args.all else [b for b, _ in changed]
        if rewrite:
            text = path.read_text(encoding="utf-8")
            for block in sorted(rewrite, key=lambda b: b.start, reverse=True):
                text = text[: block.start] + outputs[block.command] + text[block.end :]
            path.write_text(text, encoding="utf-8")
            for block in rewrite:
                print(f"{block.name}: rewrote: {block.command}")
    count = sum(len(found) for found in blocks.values())
    if args.check:
        print(f"{stale} of {count} generated blocks drifted" if stale else f"{count} blocks ok")
        return 1 if stale else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
