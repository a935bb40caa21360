"""No module in gradcmp/ is over 400 lines: a module that grows past that is split by what its
parts do. Every ``.py`` file under gradcmp/ counts (the loss files in gradcmp/data/ too)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parents[1] / "gradcmp"
LIMIT = 400


def oversized(root: Path, limit: int = LIMIT) -> dict[str, int]:
    """Each ``.py`` file under ``root`` with more than ``limit`` lines: its path → its lines."""
    lines = {
        str(path.relative_to(root.parent)): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted(root.rglob("*.py"))
    }
    return {path: n for path, n in lines.items() if n > limit}


def test_no_module_is_over_400_lines():
    found = oversized(ROOT)
    listing = "\n".join(f"{path}: {n} lines" for path, n in sorted(found.items()))
    assert not found, f"{len(found)} module(s) over {LIMIT} lines:\n{listing}"


def test_the_count_is_of_lines_and_the_limit_itself_is_allowed(tmp_path):
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "at_limit.py").write_text("x = 1\n" * LIMIT)
    (root / "sub" / "over.py").write_text("x = 1\n" * LIMIT + "y = 2")  # no final newline
    (root / "notes.txt").write_text("x\n" * 1000)  # not a module
    assert oversized(root) == {str(Path("pkg", "sub", "over.py")): LIMIT + 1}
