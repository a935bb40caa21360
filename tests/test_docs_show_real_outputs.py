"""The docs show what gradcmp really prints, the README stays short, and links resolve.

Every command output in README.md and docs/*.md is a generated block (docs/generate.py): the
command is run again here and its output, normalised by the generator's own `normalise` (times,
versions, temporary paths and column padding hidden), must match what the block shows. When it
does not, rerun `python docs/generate.py` and read the diff it makes.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MAX_README_LINES = 250


def _load_generator():
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


generate = _load_generator()
BLOCKS = [block for path in generate.doc_files() for block in generate.find_blocks(path)]


@pytest.fixture(scope="module")
def outputs() -> dict[str, str]:
    """What each distinct command prints now (run two at a time: mostly start-up)."""
    return generate.run_all([block.command for block in BLOCKS])


def test_the_docs_have_generated_blocks():
    assert BLOCKS, "no <!-- gradcmp-output: ... --> block in README.md or docs/*.md"
    assert any(block.path == README for block in BLOCKS), "the README shows no real output"


@pytest.mark.parametrize("block", BLOCKS, ids=[block.name for block in BLOCKS])
def test_shown_output_is_what_the_command_prints(block, outputs):
    now = outputs[block.command]
    if generate.drifted(block.shown, now):
        pytest.fail(
            f"{block.name}: the block for `{block.command}` no longer shows what the command "
            f"prints (rerun `python docs/generate.py`):\n{generate.diff(block, now)}",
            pytrace=False,
        )


def test_normalise_hides_only_what_varies():
    shown = "$ gradcmp run\nnative  agree  0.087    0.51 ms\njax  agree  0.087  1.93 s\n"
    now = "$ gradcmp run\nnative  agree  0.087   12.03 ms\njax  agree  0.087  861.34 ms\n"
    assert not generate.drifted(shown, now)
    assert generate.drifted(shown, now.replace("0.087", "0.088", 1))
    assert generate.drifted(shown, now.replace("agree", "disagree", 1))
    assert generate.drifted(shown, now + "(exit code 1)\n")
    report = '{\n  "verdict": "agree",\n  "seconds": 0.0005,\n  "environment": {"cpu": "A"}\n}'
    other = report.replace("0.0005", "0.0123").replace('"A"', '"B"')
    assert not generate.drifted(report, other)
    assert generate.drifted(report, other.replace('"agree"', '"disagree"'))


def test_a_block_is_found_and_rewritten_in_place(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n\n<!-- gradcmp-output: gradcmp --version -->\n```\nold\n```\nmore\n")
    (block,) = generate.find_blocks(page)
    assert (block.line, block.command, block.shown) == (3, "gradcmp --version", "old\n")
    text = page.read_text()
    assert text[: block.start] + "new\n" + text[block.end :] == (
        "text\n\n<!-- gradcmp-output: gradcmp --version -->\n```\nnew\n```\nmore\n"
    )


def test_readme_is_short_and_gives_the_two_commands():
    text = README.read_text(encoding="utf-8")
    lines = len(text.splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines (at most {MAX_README_LINES})"
    assert "make run" in text and "make test" in text
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCED = r"^(`{3,}|~{3,}).*?^\1[ \t]*$"
CODE = re.compile(FENCED + r"|`[^`\n]*`", re.M | re.S)  # where a link is no link


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(FENCED, "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    return {_slug(m[1]) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M)}


@pytest.mark.parametrize("page", generate.doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in LINK.findall(CODE.sub("", page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    assert not broken, f"{page.relative_to(ROOT)}: broken links:\n" + "\n".join(broken)
