#!/usr/bin/env python3
"""Rewrite references to the shared infrastructure that moved out of tickets/ into infra/ (issue 15).

    python scripts/rewrite_imports.py [PATH ...]      # default: the current directory; --check to only list

Rewrites, in every text file of the tree (.py, .md, .toml, .html, .txt, .cfg, .ini, .yml, .sh, Makefile):
- dotted module paths: ``tickets.events`` → ``infra.events`` (imports, settings strings, monkeypatch targets,
  task paths, docs), longest first, never inside a longer name (``invoicing.errors`` is left alone);
- file paths: ``tickets/events.py`` → ``infra/events.py`` (not inside ``tests/tickets/...``);
- ``from tickets import queues, eligibility`` → ``from infra import queues`` + ``from tickets import eligibility``;
- the moved model: ``from tickets.models import Branch, Event`` → ``from tickets.models import Branch`` +
  ``from infra.models import Event``; ``tickets.models.Event``, ``"tickets.Event"``, ``"tickets.event"``,
  ``admin:tickets_event_…`` and ``/admin/tickets/event/`` follow it (its table stays ``tickets_event``).

Migrations get only the module paths (their ``apps.get_model("tickets", "Event")`` is history and stays).
Idempotent: a second run changes nothing. Imports it splits may need ``ruff check --fix --select I`` to be
sorted again.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

# Old module → new module. Keep in sync with docs/architecture.md ("Shared infrastructure").
MODULES = {
    "tickets.events": "infra.events",
    "tickets.queues": "infra.queues",
    "tickets.bulk": "infra.db.bulk",
    "tickets.prepared": "infra.db.prepared",
    "tickets.errors": "infra.errors",
    "tickets.api.auth": "infra.api.auth",
    "tickets.api.errors": "infra.api.errors",
    "tickets.api.parsers": "infra.api.parsers",
    "tickets.admin_scope": "infra.admin_scope",
    "tickets.admin_apps": "infra.admin_apps",
    "tickets.roles": "infra.roles",
    "tickets.encryption": "infra.encryption",
    "tickets.resilient_cache": "infra.resilient_cache",
    "tickets.ratelimit": "infra.ratelimit",
    "tickets.outages": "infra.outages",
    "tickets.ingest.jsontext": "infra.jsontext",
}
# Models that moved app (state only: same table). Module → {name: new module}.
MODELS = {"tickets.models": {"Event": "infra.models"}}
MODEL_LABELS = {("tickets", "event"): ("infra", "event")}

SUFFIXES = {".py", ".md", ".toml", ".html", ".txt", ".cfg", ".ini", ".yml", ".yaml", ".sh", ".rst", ".json"}
NAMES = {"Makefile", "Dockerfile"}
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", "var", "media", "staticfiles"}

_BEFORE = r"(?<![\w.])"  # not inside a longer dotted name
_AFTER = r"(?![\w])"


def _dotted_patterns():
    patterns = []
    for old in sorted(MODULES, key=len, reverse=True):
        patterns.append((re.compile(_BEFORE + re.escape(old) + _AFTER), MODULES[old]))
    return patterns


def _path_patterns():
    patterns = []
    for old in sorted(MODULES, key=len, reverse=True):
        old_path, new_path = old.replace(".", "/"), MODULES[old].replace(".", "/")
        # At the start of a path or after "../" (relative links in docs), never inside tests/tickets/...
        pattern = re.compile(r"(?:(?<=\.\./)|(?<![\w./-]))" + re.escape(old_path) + r"(?=\.py\b)")
        patterns.append((pattern, new_path))
    return patterns


def _model_patterns():
    patterns = []
    for module, names in MODELS.items():
        for name, new_module in names.items():
            patterns.append((re.compile(_BEFORE + re.escape(f"{module}.{name}") + _AFTER), f"{new_module}.{name}"))
    for (app, model), (new_app, new_model) in MODEL_LABELS.items():
        cap = model.capitalize()
        for old, new in [
            (f'"{app}.{cap}"', f'"{new_app}.{new_model.capitalize()}"'),
            (f"'{app}.{cap}'", f"'{new_app}.{new_model.capitalize()}'"),
            (f'"{app}.{model}"', f'"{new_app}.{new_model}"'),
            (f"'{app}.{model}'", f"'{new_app}.{new_model}'"),
            (f"admin:{app}_{model}_", f"admin:{new_app}_{new_model}_"),
            (f"/admin/{app}/{model}/", f"/admin/{new_app}/{new_model}/"),
            (f'"{app}.view_{model}"', f'"{new_app}.view_{new_model}"'),
            (f'"{app}.change_{model}"', f'"{new_app}.change_{new_model}"'),
        ]:
            patterns.append((re.compile(re.escape(old)), new))
    return patterns


DOTTED, PATHS, MODEL_REFS = _dotted_patterns(), _path_patterns(), _model_patterns()


def _alias(node: ast.alias) -> str:
    return f"{node.name} as {node.asname}" if node.asname else node.name


def _split_from_imports(source: str, *, models: bool) -> str:
    """``from tickets import queues, x`` and ``from tickets.models import Event, y``: moved names to their home."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    lines = source.splitlines(keepends=True)
    edits = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
            continue
        groups: dict[str, list[str]] = {}
        kept: list[str] = []
        for alias in node.names:
            full = f"{node.module}.{alias.name}"
            if full in MODULES:
                parent, _, leaf = MODULES[full].rpartition(".")
                groups.setdefault(parent, []).append(_alias(alias) if leaf == alias.name
                                                     else f"{leaf} as {alias.asname or alias.name}")
            elif models and alias.name in MODELS.get(node.module, {}):
                groups.setdefault(MODELS[node.module][alias.name], []).append(_alias(alias))
            else:
                kept.append(_alias(alias))
        if not groups:
            continue
        first, last = node.lineno - 1, node.end_lineno - 1
        head, tail = lines[first][: node.col_offset], lines[last][node.end_col_offset:]
        if head.strip() or tail.strip().startswith(";"):
            continue  # not alone on its lines: leave it to a person
        comment = tail.rstrip("\n").strip()
        indent = head
        out = []
        if kept:
            out.append(f"{indent}from {node.module} import {', '.join(kept)}")
        for module, names in groups.items():
            out.append(f"{indent}from {module} import {', '.join(names)}")
        if comment:
            out[0] += f"  {comment}"
        edits.append((first, last, [line + "\n" for line in out]))
    for first, last, new in sorted(edits, reverse=True):
        lines[first:last + 1] = new
    return "".join(lines)


def rewrite(text: str, *, python: bool, migration: bool) -> str:
    if python:
        text = _split_from_imports(text, models=not migration)
    if not migration:
        for pattern, new in MODEL_REFS:
            text = pattern.sub(new, text)
    for pattern, new in DOTTED:
        text = pattern.sub(new, text)
    for pattern, new in PATHS:
        text = pattern.sub(new, text)
    return text


def files(roots):
    for root in roots:
        root = Path(root)
        if root.is_file():
            yield root
            continue
        for path in sorted(root.rglob("*")):
            if any(part in SKIP_DIRS for part in path.relative_to(root).parts):
                continue
            if path.is_file() and (path.suffix in SUFFIXES or path.name in NAMES):
                yield path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=["."])
    parser.add_argument("--check", action="store_true", help="list the files that would change; exit 1 if any")
    args = parser.parse_args(argv)
    me = Path(__file__).resolve()
    changed = []
    for path in files(args.paths):
        if path.resolve() == me:
            continue  # its own tables name the old paths
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        new = rewrite(text, python=path.suffix == ".py", migration="migrations" in path.parts)
        if new != text:
            changed.append(path)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    for path in changed:
        print(path)
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
