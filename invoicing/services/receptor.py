"""Check a receptor's fiscal data before any ticket is locked: RFC, régimen, UsoCFDI, postal code."""

from __future__ import annotations

import re

from invoicing.cfdi import catalogs
from invoicing.cfdi.errors import ERROR
from invoicing.cfdi.rfc import is_generic, normalize_rfc, rfc_issues
from invoicing.errors import InvoicingError

_POSTAL = re.compile(r"^[0-9]{5}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def receptor_field_errors(*, rfc: str, name: str, tax_regime: str, postal_code: str, cfdi_use: str,
                          emails=()) -> dict[str, list[str]]:
    """Spanish messages per field; empty when the data can make a valid CFDI for this receptor."""
    errors: dict[str, list[str]] = {}
    rfc = normalize_rfc(rfc or "")
    for issue in rfc_issues(rfc, "rfc"):
        if issue.severity == ERROR:
            errors.setdefault("rfc", []).append(issue.message)
    if is_generic(rfc):
        errors.setdefault("rfc", []).append(
            "Para facturar a tu nombre usa tu RFC; el RFC genérico es solo para la factura global.")
    if not (name or "").strip():
        errors.setdefault("name", []).append("Escribe tu nombre o razón social como aparece en tu constancia.")
    if not _POSTAL.match(postal_code or ""):
        errors.setdefault("postal_code", []).append("El código postal de tu domicilio fiscal tiene 5 dígitos.")
    elif not _postal_code_exists(postal_code):
        errors.setdefault("postal_code", []).append(f"El código postal {postal_code} no existe en el catálogo del SAT.")
    if "rfc" not in errors:
        regimes = {r.code for r in catalogs.regimenes_for(rfc)}
        person = "persona moral" if len(rfc) == 12 else "persona física"
        if tax_regime not in regimes:
            errors.setdefault("tax_regime", []).append(
                f"El régimen {tax_regime or '(vacío)'} no corresponde a una {person}.")
        elif cfdi_use not in {u.code for u in catalogs.usos_for(rfc, tax_regime)}:
            regime = catalogs.REGIMENES_FISCALES[tax_regime].description
            errors.setdefault("cfdi_use", []).append(
                f"El uso de CFDI {cfdi_use or '(vacío)'} no se permite con el régimen «{regime}» para una {person}.")
    for email in emails or ():
        if not _EMAIL.match(email):
            errors.setdefault("emails", []).append(f"El correo «{email}» no es válido.")
    return errors


_KNOWN_POSTAL_CODES: set[str] = set()  # per process: SAT adds codes, it practically never removes one


def _postal_code_exists(code: str) -> bool:
    """Checked against SAT's catalog when it is loaded (`load_sat_catalogs`); the pattern alone otherwise."""
    if code in _KNOWN_POSTAL_CODES:
        return True  # every invoice asks: no query for a code already seen
    try:
        from tickets.catalogs import PostalCode
    except ImportError:
        return True
    if PostalCode.objects.filter(code=code).exists():
        if len(_KNOWN_POSTAL_CODES) < 50_000:  # the whole catalog is ~32,000 codes
            _KNOWN_POSTAL_CODES.add(code)
        return True
    return not PostalCode.objects.exists()


def receptor_check(receptor) -> None:
    errors = receptor_field_errors(rfc=receptor.rfc, name=receptor.name, tax_regime=receptor.tax_regime,
                                   postal_code=receptor.postal_code, cfdi_use=receptor.cfdi_use,
                                   emails=receptor.emails)
    if errors:
        raise InvoicingError("invalid_receptor", "Revisa los datos fiscales.", errors, status=400)
