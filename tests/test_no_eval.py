"""No ``eval`` / ``exec`` anywhere in the library: formulas are parsed, never evaluated."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# A call of eval / exec (bare, or through builtins), or of ast.literal_eval; not a method
# (x.eval(...)) nor a longer word (evaluate(...), my_exec(...)).
FORBIDDEN = re.compile(
    r"(?:\bbuiltins\s*\.\s*|(?<![\w.]))(?:eval|exec)\s*\(|\bliteral_eval\b"
    r"|\b(?:getattr|__import__)\s*\(.*['\"](?:eval|exec)['\"]"
)


@pytest.mark.parametrize(
    ("line", "bad"),
    [
        ("value = eval(text)", True),
        ("exec(code, namespace)", True),
        ("builtins.eval (s)", True),
        ("import builtins; builtins.exec(s)", True),
        ("f = getattr(builtins, 'eval')", True),
        ("ast.literal_eval(s)", True),
        ("x = [eval(t) for t in ts]", True),
        ("result = evaluate(root, env)", False),
        ("model.eval()", False),
        ("def my_exec(x):", False),
        ("# KeOps ``eval``s formula strings", False),
        ("re.compile(pattern)", False),
    ],
)
def test_the_pattern_itself(line, bad):
    assert bool(FORBIDDEN.search(line)) is bad


def test_no_eval_or_exec_in_the_sources():
    files = sorted(SRC.rglob("*.py"))
    assert files, f"no sources found under {SRC}"
    offenders = [
        f"{path.relative_to(SRC)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if FORBIDDEN.search(line)
    ]
    assert offenders == []
