"""The import contracts of pyproject.toml ([tool.importlinter], run by `make lint`) hold, and would catch a break:
a lower layer importing a higher one, infra importing an app, or invoicing.cfdi importing Django."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed (make install-dev)")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(("module", "planted", "broken"), [
    ("tickets/planted_violation.py", "import portal.views  # noqa: F401\n", "Layers"),
    ("infra/planted_violation.py", "import tickets.models  # noqa: F401\n", "Layers"),
    ("infra/planted_violation.py", "import tickets.models  # noqa: F401\n", "infra is shared infrastructure"),
    ("infra/api/planted_violation.py", "def f():\n    from invoicing import lifecycle  # noqa: F401\n", "Layers"),
    ("invoicing/cfdi/planted_violation.py", "import django.db  # noqa: F401\n", "invoicing.cfdi is pure Python"),
    ("invoicing/cfdi/planted_violation.py", "import infra.errors  # noqa: F401\n", "invoicing.cfdi is pure Python"),
])
def test_a_planted_violation_breaks_its_contract(tmp_path, module, planted, broken):
    copy = tmp_path / "project"
    for name in ("portal", "invoicing", "tickets", "infra"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    (copy / module).write_text(planted, encoding="utf-8")
    result = lint_imports(copy)
    assert result.returncode != 0
    assert contract_verdict(result.stdout, broken) == "BROKEN", result.stdout


def contract_verdict(stdout: str, name_start: str) -> str:
    """KEPT or BROKEN, as the report says for the contract whose name starts so (its lines are wrapped)."""
    text = " ".join(stdout.split())
    after = text[text.index(name_start, text.index("Contracts")):]
    return min(("KEPT", "BROKEN"), key=lambda word: after.find(word) if word in after else len(after))


def test_the_lifecycle_diagram_is_the_transition_table():
    import re

    from invoicing.lifecycle import CREATED, TRANSITIONS

    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    diagram = text.split("```mermaid", 1)[1].split("```", 1)[0]
    arrows = set()
    for left, right in re.findall(r"^\s*(\S+)\s+-->\s+([^\s:]+)", diagram, flags=re.M):
        if right == "[*]":
            continue  # a final status: the table says so by having no targets
        arrows.add((CREATED if left == "[*]" else left, right))
    table = {(source, target) for source, targets in TRANSITIONS.items() for target in targets}
    assert arrows == table
