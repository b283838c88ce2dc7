"""How the project's modules depend on each other, beyond the layers (tests/test_architecture.py):

- no two modules import each other (a cycle hidden behind an import inside a function still counts: grimp sees it);
- an import inside a function is there for a reason written below, not to hide a cycle;
- work runs after a commit through one helper (``infra.queues.after_commit`` / ``enqueue_on_commit``);
- the database's vendor is asked in one module (``infra.db.vendor``).
"""

import ast
import re
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (make install-dev)")

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("portal", "invoicing", "tickets", "infra")

_READY = "AppConfig.ready: the models and receivers it wires exist only once the app registry is ready"
_COMMAND = ("a management command: manage.py imports every command to find one; the work a command runs is "
            "imported when it runs (qcluster warms the engine itself, in each worker)")
_PURE = ("tickets/ingest/normalize.py is pure Python, importable without the app registry (the property tests "
         "run it so): the catalogs and rates it reads are models, loaded on first use")
_CATALOGS = ("the CFDI engine's catalogs are large: loaded when a rule needs them, not whenever tickets.models "
             "loads (every manage.py command, every migration)")

# (file, function, module imported) → why it is imported inside the function.
ALLOWED = {
    ("invoicing/apps.py", "ready", "invoicing.schedules"): _READY,
    ("invoicing/apps.py", "ready", "invoicing.stamp_queue"): _READY,
    ("invoicing/apps.py", "ready", "invoicing.delivery_queue"): _READY,
    ("invoicing/apps.py", "ready", "invoicing.webhooks.receivers"): _READY,
    ("invoicing/apps.py", "ready", "tickets.signals"): _READY,
    ("invoicing/apps.py", "ready", "invoicing.lifecycle"): _READY,
    ("invoicing/apps.py", "ready", "invoicing.models"): _READY,
    ("invoicing/management/commands/qcluster.py", "_run", "invoicing.cfdi.resources"): _COMMAND,
    ("invoicing/management/commands/qcluster.py", "_ticks", "invoicing.delivery_queue"): _COMMAND,
    ("invoicing/management/commands/qcluster.py", "_ticks", "invoicing.stamp_queue"): _COMMAND,
    ("invoicing/management/commands/qcluster.py", "_batches_restart", "tickets.ingest.lifecycle"): _COMMAND,
    ("invoicing/management/commands/seed_demo.py", "_staff", "infra.roles"): _COMMAND,
    ("invoicing/management/commands/seed_demo.py", "_staff", "tickets.models"): _COMMAND,
    ("tickets/management/commands/load_sat_catalogs.py", "handle", "tickets.zones"): _COMMAND,
    ("tickets/management/commands/load_sat_catalogs.py", "tax_rate_rows", "invoicing.cfdi.catalogs"): _COMMAND,
    ("tickets/catalogs.py", "tax_rate_catalog", "invoicing.cfdi.catalogs"): _CATALOGS,
    ("tickets/exchange_rates.py", "validate_currency", "invoicing.cfdi.catalogs"): _CATALOGS,
    ("tickets/ingest/normalize.py", "tasas", "tickets.catalogs"): _PURE,
    ("tickets/ingest/normalize.py", "postal", "tickets.zones"): _PURE,
    ("tickets/ingest/normalize.py", "rates", "tickets.exchange_rates"): _PURE,
}


def _sources():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def two_module_cycles(graph) -> list[tuple[str, str]]:
    cycles = []
    for a in sorted(graph.modules):
        for b in graph.find_modules_directly_imported_by(a):
            if a < b and b in graph.modules and a in graph.find_modules_directly_imported_by(b):
                cycles.append((a, b))
    return cycles


def local_imports(path: Path, source: str | None = None) -> set[tuple[str, str, str]]:
    """(file, function, module) of every import of a project module inside a function."""
    tree = ast.parse(source if source is not None else path.read_text(encoding="utf-8"))
    relative = path.relative_to(ROOT).as_posix() if path.is_absolute() else path.as_posix()
    found = set()
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            found |= {(relative, function.name, m) for m in modules if m.split(".")[0] in PACKAGES}
    return found


def test_no_two_modules_import_each_other(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    cycles = two_module_cycles(grimp.build_graph(*PACKAGES, cache_dir=None))
    assert cycles == []


def test_the_cycle_check_catches_a_planted_cycle(tmp_path, monkeypatch):
    package = tmp_path / "planted"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from planted import b\n")
    (package / "b.py").write_text("def f():\n    from planted import a  # hidden in a function: still a cycle\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert two_module_cycles(grimp.build_graph("planted", cache_dir=None)) == [("planted.a", "planted.b")]


def test_every_import_inside_a_function_has_its_reason():
    found = set().union(*(local_imports(path) for path in _sources()))
    assert sorted(found - ALLOWED.keys()) == [], "import at the top of the module, or add it to ALLOWED with why"
    assert sorted(ALLOWED.keys() - found) == [], "no longer inside a function: drop it from ALLOWED"


def test_the_local_import_scan_sees_one():
    source = "def f():\n    if True:\n        from invoicing.models import Invoice\n    import os\n"
    assert local_imports(Path("x.py"), source) == {("x.py", "f", "invoicing.models")}


ON_COMMIT = re.compile(r"\bon_commit\b")
VENDOR = re.compile(r"\.vendor\b(?!\.|\s+import)")  # the attribute, not the module infra.db.vendor


def _offenders(pattern: re.Pattern, allowed: set[str]) -> list[str]:
    found = []
    for path in _sources():
        relative = path.relative_to(ROOT).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if relative not in allowed and pattern.search(line):
                found.append(f"{relative}:{number}: {line.strip()}")
    return found


def test_work_after_a_commit_goes_through_the_one_helper():
    """infra.queues.after_commit (and enqueue_on_commit on it): arguments bound at once, one place to look."""
    assert _offenders(ON_COMMIT, {"infra/queues.py"}) == []
    assert ON_COMMIT.search("transaction.on_commit(lambda: send(pk))")
    assert not ON_COMMIT.search("stamp_queue_wake_on_commit()")


def test_the_database_vendor_is_asked_in_one_module():
    """infra.db.vendor.is_postgresql: every PostgreSQL fast path asks there, the ORM path is the reference."""
    assert _offenders(VENDOR, {"infra/db/vendor.py"}) == []
    assert VENDOR.search('if connection.vendor == "postgresql":')
