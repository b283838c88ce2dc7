"""RFC rules (RULES.md §7.1), the one definition: pattern, date, persona física/moral, check digit (a warning).

Everything that reads an RFC takes it from here: the receptor rules (receptor.py), the engine, the merchant's
RFC field, the Constancia reader and the portal's script (which gets ``RFC_SEPARATORS`` and ``PERSONAS`` from
the server).
"""

from __future__ import annotations

import functools
import re
from datetime import date

from .errors import WARNING, ValidationIssue

RFC_PUBLICO_GENERAL = "XAXX010101000"
RFC_EXTRANJERO = "XEXX010101000"
RFCS_GENERICOS = frozenset({RFC_PUBLICO_GENERAL, RFC_EXTRANJERO})

# tdCFDI.xsd t_RFC: 3 letters (persona moral) or 4 (persona física), AAMMDD, 2 of homoclave, check digit.
RFC_BODY = r"[A-Z&Ñ]{3,4}[0-9]{2}(?:0[1-9]|1[012])(?:0[1-9]|[12][0-9]|3[01])[A-Z0-9]{2}[0-9A]"
RFC_PATTERN = re.compile(f"^{RFC_BODY}$")
# What people type between the parts of an RFC ("XIQB-891116-QE4", "xiqb 891116 qe4"); never part of one.
RFC_SEPARATORS = r"[\s\-_.]"
_SEPARATORS = re.compile(RFC_SEPARATORS)
_VALUES = "0123456789ABCDEFGHIJKLMN&OPQRSTUVWXYZ Ñ"

PERSONA_MORAL = "moral"
PERSONA_FISICA = "fisica"
PERSONAS = {12: PERSONA_MORAL, 13: PERSONA_FISICA}  # by length


def normalize_rfc(rfc: str) -> str:
    """Upper-cased, without the separators people type."""
    return _SEPARATORS.sub("", rfc or "").upper()


def persona_of(rfc: str) -> str:
    """PERSONA_MORAL (12 characters), PERSONA_FISICA (13) or "" (neither: not an RFC yet)."""
    return PERSONAS.get(len(rfc), "")


def is_persona_moral(rfc: str) -> bool:
    return persona_of(rfc) == PERSONA_MORAL


def is_generic(rfc: str) -> bool:
    return rfc in RFCS_GENERICOS


def check_digit(rfc: str) -> str:
    """Expected last character (phpcfdi CheckSum): 12-char RFCs are padded with a leading space."""
    padded = rfc.rjust(13)
    total = sum(_VALUES.index(ch) * (13 - i) for i, ch in enumerate(padded[:12]) if ch in _VALUES)
    digit = 11 - total % 11
    return "0" if digit == 11 else "A" if digit == 10 else str(digit)


def _valid_date(rfc: str) -> bool:
    digits = rfc[-9:-3]
    yy, mm, dd = int(digits[:2]), int(digits[2:4]), int(digits[4:])
    for century in (1900, 2000):
        try:
            date(century + yy, mm, dd)
            return True
        except ValueError:
            continue
    return False


def rfc_issues(rfc: str, path: str, *, who: str = "el RFC") -> list[ValidationIssue]:
    """Problems with an RFC's shape; empty when it looks right. Generic RFCs are accepted as they are."""
    return list(_rfc_issues(rfc, path, who))


@functools.lru_cache(maxsize=4096)
def _rfc_issues(rfc: str, path: str, who: str) -> tuple[ValidationIssue, ...]:
    return tuple(_check(rfc, path, who))


def _check(rfc: str, path: str, who: str) -> list[ValidationIssue]:
    if is_generic(rfc):
        return []
    if not RFC_PATTERN.match(rfc):
        return [
            ValidationIssue(
                "RFC_FORMATO",
                path,
                f"{who[:1].upper()}{who[1:]} «{rfc}» no tiene un formato válido: son 4 letras (persona física) o 3 "
                "(persona moral), 6 dígitos de la fecha (AAMMDD) y 3 caracteres de homoclave.",
            )
        ]
    if not _valid_date(rfc):
        return [
            ValidationIssue(
                "RFC_FECHA", path, f"La fecha contenida en {who} «{rfc}» ({rfc[-9:-3]}) no es una fecha válida."
            )
        ]
    if check_digit(rfc) != rfc[-1]:
        return [
            ValidationIssue(
                "RFC_DIGITO",
                path,
                f"El dígito verificador de {who} «{rfc}» no coincide; revisa que esté bien escrito "
                "(algunos RFC asignados por el SAT no cumplen esta regla).",
                WARNING,
            )
        ]
    return []
