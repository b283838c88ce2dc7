"""The error catalogue of the API's documentation (portal/api_errors.py) is the code's: every code the services and
views raise is in it, and nothing is in it that nothing raises. (tests/conftest.py adds the runtime half: every
error the suite's API calls answer must carry a catalogued code.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from portal.api_errors import CATALOGUE, codes_by_status, markdown_table

ROOT = Path(__file__).resolve().parents[2]
CODE = re.compile(r"^[a-z][a-z0-9_]*$")
# Calls whose first argument is an error code: the invoicing error and the helpers that build one.
CODE_FIRST = {"InvoicingError", "_error", "_refuse", "envelope", "__init__"}
SKIP_DIRS = {"migrations", "pac", "cfdi", "management"}  # PAC wire formats and the pure engine are not the API

# Codes the scan meets that no API answer carries, and why.
NOT_API = {
    "invalid": "default of DomainError; every raise in an API path names its code (the runtime check catches one "
               "that does not)",
    "conflict": "default of Conflict, as above",
    "unprocessable": "default of Unprocessable, as above",
    "last_owner": "the back office's team page",
    "staff_exists": "the back office's team page",
    "invalid_logo": "the back office's logo upload",
    "correction_not_allowed": "the shoppers' «corregir mis datos» page",
    "correction_window_closed": "the shoppers' «corregir mis datos» page",
    "rfc_mismatch": "the shoppers' «corregir mis datos» page",
    "receptor_unchanged": "the shoppers' page that fixes and retries a failed invoice",
    "retry_not_possible": "the shoppers' page that fixes and retries a failed invoice",
    "sin_csd": "a cancellation sent by the worker: recorded on the cancellation (last_code), not answered",
    "csd": "a cancellation's result code, recorded on it",
    "sat": "a cancellation's result code, recorded on it",
    "ticket_outside_period": "a ticket's reason in «excluded» of POST /global-invoices (documented there)",
    "ticket_with_withholdings": "a ticket's reason in «excluded» of POST /global-invoices (documented there)",
    "pdf_not_ready": "the document download answers it as 202 with Retry-After (PdfPendingOut), not as an error",
}


def raised_codes() -> dict[str, set[str]]:
    """code → where: string literals the code passes as an error code."""
    found: dict[str, set[str]] = {}

    def add(code, where):
        if isinstance(code, str) and CODE.match(code):
            found.setdefault(code, set()).add(where)

    for app in ("infra", "tickets", "invoicing"):
        for path in (ROOT / app).rglob("*.py"):
            if SKIP_DIRS & set(path.relative_to(ROOT).parts):
                continue
            where = str(path.relative_to(ROOT))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call):
                    name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                    if name in CODE_FIRST and node.args and isinstance(node.args[0], ast.Constant):
                        add(node.args[0].value, where)
                    for keyword in node.keywords:
                        if keyword.arg == "code" and isinstance(keyword.value, ast.Constant):
                            add(keyword.value.value, where)
                elif (isinstance(node, ast.Assign) and len(node.targets) == 1
                      and getattr(node.targets[0], "id", None) in ("code", "UNAVAILABLE_CODE")
                      and isinstance(node.value, ast.Constant)):
                    add(node.value.value, where)
                elif (isinstance(node, ast.Return) and path.name == "errors.py" and isinstance(node.value, ast.Tuple)
                      and node.value.elts and isinstance(node.value.elts[0], ast.Constant)):
                    add(node.value.elts[0].value, where)  # the API handler's DRF translations
    from tickets.eligibility import ERROR_CODES

    for code in ERROR_CODES.values():  # services raise verdict.error_code
        add(code, "tickets/eligibility.py")
    add("permission_denied", "infra/api/errors.py")  # DRF's PermissionDenied without a code of its own
    return found


def test_every_code_the_api_raises_is_in_the_catalogue():
    missing = {code: sorted(where) for code, where in raised_codes().items()
               if code not in CATALOGUE and code not in NOT_API}
    assert not missing, ("códigos sin describir en portal/api_errors.py (o, si no son de la API, en NOT_API):\n"
                         + "\n".join(f"  {code}: {where}" for code, where in sorted(missing.items())))


def test_the_catalogue_lists_nothing_that_is_not_raised():
    found = raised_codes()
    stale = sorted(code for code in CATALOGUE if code not in found)
    assert not stale, f"códigos del catálogo que ya nada produce: {stale}"
    assert not set(NOT_API) & set(CATALOGUE)


def test_every_entry_has_a_status_and_a_spanish_meaning():
    for code, (statuses, meaning) in CATALOGUE.items():
        assert statuses and all(400 <= s < 600 for s in statuses), code
        assert meaning.endswith(".") and len(meaning) > 15, code
    table = markdown_table()
    assert table.count("\n") + 1 == 2 + sum(len(c) for c in codes_by_status().values())
