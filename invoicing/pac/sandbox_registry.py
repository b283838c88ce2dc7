"""The sandbox PAC's registry of taxpayers: a few demo receptors as SAT's list of RFCs (l_RFC) knows them.

A real PAC refuses a receptor whose name or domicilio fiscal is not the one SAT has for the RFC — CFDI40145
(name) and CFDI40147 (postal code), the most common real rejections. With this registry the sandbox answers
the same for these RFCs, so the demo can show the shopper's "No pudimos generar tu factura" page and the way
back. An RFC that is not listed is accepted as it comes: the sandbox cannot know every taxpayer.

The entries are SAT's public test taxpayers as the PAC sandboxes list them. Left out on purpose:
EKU9003173C9 (the demo's emisor, whose domicilio differs between SAT's test sets) and XIQB891116QE4 (listed
with several postal codes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CFDI40145 = "CFDI40145"
CFDI40147 = "CFDI40147"


@dataclass(frozen=True)
class Taxpayer:
    rfc: str
    name: str  # as in the Constancia de Situación Fiscal: upper case, without the régimen de capital
    postal_code: str  # of the domicilio fiscal


DEMO_TAXPAYERS: dict[str, Taxpayer] = {t.rfc: t for t in (
    Taxpayer("URE180429TM6", "UNIVERSIDAD ROBOTICA ESPAÑOLA", "65000"),  # persona moral, régimen 601
    Taxpayer("CACX7605101P8", "XOCHILT CASAS CHAVEZ", "36257"),  # persona física (a test CSD in shared/sat)
    Taxpayer("FUNK671228PH6", "KARLA FUENTE NOLASCO", "01160"),  # persona física, régimen 605
    Taxpayer("MASO451221PM4", "MARIA OLIVIA MARTINEZ SAGAZ", "80290"),  # persona física
)}

_SPACES = re.compile(r"\s+")


def _name(value: str) -> str:
    return _SPACES.sub(" ", value or "").strip().upper()


def registry_mismatch(rfc: str, name: str, postal_code: str) -> tuple[str, str] | None:
    """(code, message) when the receptor is in the registry and its name or postal code is not the registered
    one, in the PAC's order (the name first); None otherwise. The messages are SAT's, with what to check."""
    taxpayer = DEMO_TAXPAYERS.get((rfc or "").upper())
    if taxpayer is None:
        return None
    if _name(name) != taxpayer.name:
        return (CFDI40145, "Este campo Nombre del receptor, debe pertenecer al nombre asociado al RFC registrado en el "
                f"campo Rfc del Receptor: el nombre «{_name(name)}» no es el registrado en el SAT para el RFC "
                f"{taxpayer.rfc}.")
    if (postal_code or "").strip() != taxpayer.postal_code:
        return (CFDI40147, "Este campo DomicilioFiscalReceptor del receptor, debe encontrarse en la lista de RFC "
                f"inscritos no cancelados en el SAT: el código postal {postal_code} no es el del domicilio fiscal "
                f"registrado para el RFC {taxpayer.rfc}.")
    return None
