"""The receptor's rules, defined once: how typed fiscal data is cleaned, and what SAT would refuse in it.

Every path that invoices a person (the portal's form, the POS API, late requests) goes through
``invoicing/services/receptor.py``, which calls ``receptor_clean`` and ``receptor_issues``; the engine's
``validation.py`` calls ``receptor_issues`` again on the document as a last line of defence. One set of codes
and Spanish messages follows: SAT's (CFDI40xxx) where one exists, otherwise a short descriptive code. Paths are
the receptor's field names (rfc, name, tax_regime, postal_code, cfdi_use, foreign_country, foreign_tax_id);
``XML_PATHS`` maps them to the CFDI.

Foreign customers (residents abroad without a Mexican RFC) invoice with SAT's generic RFC XEXX010101000
(Anexo 20, Receptor): ResidenciaFiscal (c_Pais, never MEX) and NumRegIdTrib (their country's tax id, in the
format c_Pais gives for that country) are required, RegimenFiscalReceptor is 616, UsoCFDI is S01 and
DomicilioFiscalReceptor is the LugarExpedicion (CFDI40149): a foreigner's postal code is not theirs to give, so
cleaning drops it and the invoice takes its issuing branch's. Every other RFC must carry neither foreign field.

Cleaning: RFC upper-cased without separators; name upper-cased, whitespace collapsed and the régimen de capital
("S.A. DE C.V.") removed, which the caller shows as a warning (the CFDI 4.0 name is the one in the Constancia de
Situación Fiscal, without it). Cleaning is idempotent: cleaning clean data changes nothing and warns nothing, so
a service may clean what a form already cleaned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import catalogs as cat
from .errors import ERROR, WARNING, ValidationIssue
from .resources import postal_code_in_catalog
from .rfc import RFC_EXTRANJERO, RFC_PUBLICO_GENERAL, is_generic, normalize_rfc, persona_of, rfc_issues

NAME_MAX = 300  # cfdv40.xsd Receptor/@Nombre: [^|]{1,300} after whitespace collapse
POSTAL_CODE = re.compile(r"^[0-9]{5}$")  # cfdv40.xsd DomicilioFiscalReceptor
# The XSD's pattern refuses "|" (the cadena original's separator); XML 1.0 refuses C0 controls, surrogates and
# U+FFFE/U+FFFF. C1 controls are legal XML but never part of a name. Whitespace controls are collapsed first.
_NAME_REFUSED = re.compile("[|\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")

XML_PATHS = {
    "rfc": "Receptor.Rfc",
    "name": "Receptor.Nombre",
    "postal_code": "Receptor.DomicilioFiscalReceptor",
    "tax_regime": "Receptor.RegimenFiscalReceptor",
    "cfdi_use": "Receptor.UsoCFDI",
    "foreign_country": "Receptor.ResidenciaFiscal",
    "foreign_tax_id": "Receptor.NumRegIdTrib",
}
# The receptor field a PAC's rejection points at (SAT's codes and the rules' own): what a receptor may correct
# herself to get the same invoice stamped (the portal's "No pudimos generar tu factura" page).
ERROR_FIELDS = {
    "CFDI40143": "rfc", "CFDI40144": "rfc", "RFC_FORMATO": "rfc", "RFC_FECHA": "rfc", "RFC_GENERICO": "rfc",
    "CFDI40145": "name", "CFDI40146": "name", "NOMBRE_CARACTER": "name", "NOMBRE_LARGO": "name",
    "CFDI40147": "postal_code", "CFDI40148": "postal_code", "CFDI40149": "postal_code",
    "CFDI40157": "tax_regime", "CFDI40158": "tax_regime", "CFDI40159": "tax_regime",
    "CFDI40160": "cfdi_use", "CFDI40161": "cfdi_use",
    "CFDI40150": "foreign_country", "CFDI40151": "foreign_country", "CFDI40152": "foreign_country",
    "CFDI40153": "foreign_tax_id", "CFDI40154": "foreign_tax_id", "CFDI40155": "foreign_tax_id",
}


def error_field(code: str) -> str:
    """The receptor field ``code`` is about ("" when it is not about the receptor's data)."""
    return next((field for prefix, field in ERROR_FIELDS.items() if (code or "").startswith(prefix)), "")


TAX_ID_MAX = 40  # cfdv40.xsd Receptor/@NumRegIdTrib: 1 to 40 characters
# c_Pais' "Formato de Registro de Identidad Tributaria" column (satcfdi's copy of the catalog keeps only the
# names): the countries for which SAT states a format. Every other country takes any 1-40 characters.
TAX_ID_FORMATS = {"USA": (re.compile(r"^[0-9]{9}$"), "9 dígitos"), "CAN": (re.compile(r"^[0-9]{9}$"), "9 dígitos")}
_TAX_ID_SEPARATORS = re.compile(r"[\s.\-]")
PERSONA_TEXT = {cat.PERSONA_MORAL: "moral (RFC de 12 caracteres)", cat.PERSONA_FISICA: "física (RFC de 13 caracteres)"}

# --- régimen de capital ------------------------------------------------------------------------------------
# Abbreviations of Mexican company types, each letter optionally followed by a dot and spaces ("S.A.", "S. A.",
# "SA"), then their usual qualifiers ("DE C.V.", "DE R.L.", "DE R.I." ...). Longest first: the regex takes the
# first alternative that matches.
_TYPES = ("SAPIB", "SAPI", "SAB", "SAS", "SA", "S DE RL", "S EN NC", "S EN C POR A", "S EN C", "SC", "AC", "SPR",
          "IAP", "IBP")
_QUALIFIERS = ("RL", "RI", "RS", "CV")


def _abbreviation(text: str) -> str:
    words = []
    for word in text.split():
        if word in ("DE", "EN", "POR"):
            words.append(word)
        else:
            words.append(r"\s*".join(rf"{letter}\.?" for letter in word))
    return r"\s*".join(words)


# JavaScript-compatible on purpose: the portal's script gets it (``CAPITAL_PATTERN``) for the live hint.
CAPITAL_PATTERN = (
    r"\b(?:" + "|".join(_abbreviation(t) for t in _TYPES) + r")"
    r"(?:\s*DE\s*(?:" + "|".join(_abbreviation(q) for q in _QUALIFIERS) + r"))*\s*$"
)
_CAPITAL = re.compile(CAPITAL_PATTERN, re.IGNORECASE)


def strip_regimen_capital(name: str) -> tuple[str, str]:
    """(upper-cased name without the régimen de capital, what was removed). A name that is nothing but a
    régimen de capital is left as it is: ``receptor_issues`` refuses it."""
    rest = " ".join(name.split()).upper()
    removed: list[str] = []
    while (match := _CAPITAL.search(rest)) and rest[: match.start()].rstrip(" ,"):
        removed.insert(0, match.group(0).strip())
        rest = rest[: match.start()].rstrip(" ,")
    return rest, " ".join(removed)


def regimen_capital_of(name: str) -> str:
    """The régimen de capital ending ``name``, or ""."""
    match = _CAPITAL.search(name)
    return match.group(0).strip().upper() if match else ""


# --- cleaning ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CleanReceptor:
    rfc: str
    name: str
    tax_regime: str
    postal_code: str
    cfdi_use: str
    name_removed: str = ""  # the régimen de capital taken off the name (a warning to show)
    foreign_country: str = ""
    foreign_tax_id: str = ""


def receptor_clean(*, rfc: str, name: str, tax_regime: str, postal_code: str, cfdi_use: str,
                   foreign_country: str = "", foreign_tax_id: str = "") -> CleanReceptor:
    name, removed = strip_regimen_capital(name or "")
    rfc = normalize_rfc(rfc or "")
    country = (foreign_country or "").strip().upper()
    tax_id = " ".join((foreign_tax_id or "").split()).upper()
    if country in TAX_ID_FORMATS:
        tax_id = _TAX_ID_SEPARATORS.sub("", tax_id)  # "12-3456789" is how an EIN is written; SAT wants the digits
    return CleanReceptor(
        rfc=rfc,
        name=name,
        tax_regime=(tax_regime or "").strip(),
        # A foreigner's DomicilioFiscalReceptor is the place of issue (CFDI40149): the invoice sets it.
        postal_code="" if rfc == RFC_EXTRANJERO else (postal_code or "").strip(),
        cfdi_use=(cfdi_use or "").strip().upper(),
        name_removed=removed,
        foreign_country=country,
        foreign_tax_id=tax_id,
    )


# --- checks --------------------------------------------------------------------------------------------------


class _Issues(list):
    def add(self, code: str, path: str, message: str, severity: str = ERROR) -> None:
        self.append(ValidationIssue(code, path, message, severity))

    def has(self, path: str) -> bool:
        return any(i.path == path and i.severity == ERROR for i in self)


def receptor_issues(*, rfc: str, name: str, tax_regime: str, postal_code: str, cfdi_use: str,
                    name_removed: str = "", generic_allowed: bool = False,
                    lugar_expedicion: str | None = None, foreign_country: str = "",
                    foreign_tax_id: str = "") -> list[ValidationIssue]:
    """Everything wrong with a (clean) receptor, errors and warnings, in field order.

    ``generic_allowed``: the engine accepts XAXX010101000 (global invoices, credit notes to a global); a person
    asking for their invoice must give their own RFC, or XEXX010101000 with their country and tax id if they
    live abroad. ``lugar_expedicion`` adds the generic RFC's postal-code rule (CFDI40149); without it (a request,
    before the issuing branch is known) a foreigner's postal code is left for the invoice to set.
    """
    r = _Issues()
    _rfc(r, rfc, generic_allowed)
    _name(r, rfc, name, name_removed)
    persona = "" if r.has("rfc") else persona_of(rfc)
    generic = is_generic(rfc) and (generic_allowed or rfc == RFC_EXTRANJERO)
    _tax_regime(r, tax_regime, persona, generic)
    _cfdi_use(r, rfc, cfdi_use, tax_regime, persona, regimen_ok=not r.has("tax_regime"))
    if not (rfc == RFC_EXTRANJERO and lugar_expedicion is None):  # else the invoice puts its LugarExpedicion here
        _postal_code(r, postal_code, generic, lugar_expedicion)
    _foreign(r, rfc, foreign_country, foreign_tax_id)
    return list(r)


def _rfc(r: _Issues, rfc: str, generic_allowed: bool) -> None:
    if not rfc:
        r.add("RFC_FORMATO", "rfc", "Escribe tu RFC: 13 caracteres si eres persona física, 12 si es una empresa "
                                    "(persona moral).")
    elif rfc == RFC_PUBLICO_GENERAL and not generic_allowed:
        r.add("RFC_GENERICO", "rfc", "Ese es el RFC genérico de público en general: para facturar necesitas tu "
                                     "propio RFC (o, si resides en el extranjero, marca «Soy extranjero»).")
    else:
        r.extend(rfc_issues(rfc, "rfc", who="tu RFC"))


def _name(r: _Issues, rfc: str, name: str, removed: str) -> None:
    if not name:
        r.add("CFDI40145", "name", "Escribe tu nombre o razón social como aparece en tu Constancia de Situación "
                                   "Fiscal.")
        return
    if "|" in name:
        r.add("NOMBRE_CARACTER", "name", "El nombre no puede llevar «|». Escríbelo como aparece en tu Constancia "
                                         "de Situación Fiscal.")
    elif _NAME_REFUSED.search(name):
        r.add("NOMBRE_CARACTER", "name", "El nombre lleva caracteres de control que el SAT no admite. Escríbelo "
                                         "como aparece en tu Constancia de Situación Fiscal.")
    if len(name) > NAME_MAX:
        r.add("NOMBRE_LARGO", "name", f"El nombre o razón social admite hasta {NAME_MAX} caracteres.")
    if name == cat.NOMBRE_PUBLICO_GENERAL and rfc != RFC_PUBLICO_GENERAL:
        r.add("CFDI40146", "name", "El nombre «PUBLICO EN GENERAL» solo se usa con el RFC XAXX010101000.")
    capital = regimen_capital_of(name)
    if capital and capital == name:
        r.add("CFDI40145", "name", "Escribe tu nombre o razón social, sin el régimen de capital.")
    elif removed:
        r.add("REGIMEN_CAPITAL", "name", f"Quitamos «{removed}» del nombre: desde CFDI 4.0 el SAT pide la razón "
                                         "social sin el régimen de capital, tal como en la Constancia de Situación "
                                         "Fiscal.", WARNING)
    elif capital:
        r.add("REGIMEN_CAPITAL", "name", f"El nombre lleva el régimen de capital «{capital}»: desde CFDI 4.0 el "
                                         "SAT pide la razón social sin él.", WARNING)


def _tax_regime(r: _Issues, code: str, persona: str, generic: bool) -> None:
    regimen = cat.REGIMENES_FISCALES.get(code)
    if not code:
        r.add("CFDI40157", "tax_regime", "Elige tu régimen fiscal.")
    elif regimen is None:
        r.add("CFDI40157", "tax_regime", f"El régimen fiscal «{code}» no existe en el catálogo del SAT; elige uno "
                                         "de la lista.")
    elif generic:
        if code != "616":
            r.add("CFDI40159", "tax_regime", "Con RFC genérico (público en general o extranjero), el régimen fiscal "
                                             "debe ser 616 «Sin obligaciones fiscales».")
    elif persona and code not in {x.code for x in cat.regimenes_for_persona(persona)}:
        r.add("CFDI40158", "tax_regime", f"El régimen {regimen.code} «{regimen.description}» no corresponde a una "
                                         f"persona {PERSONA_TEXT[persona]}. Elige otro de la lista.")


def _cfdi_use(r: _Issues, rfc: str, code: str, regimen: str, persona: str, *, regimen_ok: bool) -> None:
    uso = cat.USOS_CFDI.get(code)
    if not code:
        r.add("CFDI40160", "cfdi_use", "Elige el uso de la factura.")
        return
    if uso is None:
        r.add("CFDI40160", "cfdi_use", f"El uso «{code}» no existe en el catálogo del SAT; elige uno de la lista.")
        return
    if code in cat.NOT_FOR_SALES:
        r.add("CFDI40161", "cfdi_use", f"El uso {uso.code} «{uso.description}» es solo para recibos de pago o de "
                                       "nómina.")
    elif rfc == RFC_EXTRANJERO and code != "S01":
        r.add("CFDI40161", "cfdi_use", "Con RFC de extranjero el uso del CFDI debe ser S01 «Sin efectos "
                                       "fiscales».")
    elif not persona or not regimen_ok:
        return  # the RFC or the régimen is wrong already: which uses fit is not known
    elif code not in {u.code for u in cat.usos_for_persona(persona, "")}:
        r.add("CFDI40161", "cfdi_use", f"El uso {uso.code} «{uso.description}» no es para una persona "
                                       f"{PERSONA_TEXT[persona]}. Elige otro uso de la lista (por ejemplo S01 «Sin "
                                       "efectos fiscales»).")
    elif code not in {u.code for u in cat.usos_for_persona(persona, regimen)}:
        reg = cat.REGIMENES_FISCALES[regimen]
        r.add("CFDI40161", "cfdi_use", f"El uso {uso.code} «{uso.description}» no se permite con el régimen "
                                       f"{reg.code} «{reg.description}». Elige otro uso de la lista (por ejemplo "
                                       "S01 «Sin efectos fiscales») o revisa tu régimen.")


def postal_code_exists(code: str) -> bool:
    """In SAT's c_CodigoPostal as satcfdi ships it (the values the PAC checks against); no table needed."""
    return postal_code_in_catalog(code)


def _postal_code(r: _Issues, code: str, generic: bool, lugar_expedicion: str | None) -> None:
    if not POSTAL_CODE.match(code):
        r.add("CFDI40147", "postal_code", "El código postal de tu domicilio fiscal tiene 5 dígitos, por ejemplo "
                                          "06600.")
    elif generic and lugar_expedicion is not None and code != lugar_expedicion:
        r.add("CFDI40149", "postal_code", "Con RFC genérico, el código postal del receptor debe ser el del lugar "
                                          "de expedición.")
    elif not postal_code_exists(code):
        r.add("CFDI40147", "postal_code", f"El código postal {code} no existe en el catálogo del SAT. Escribe el "
                                          "de tu domicilio fiscal, como aparece en tu Constancia de Situación "
                                          "Fiscal.")


def country_name(code: str) -> str | None:
    """The c_Pais name of ``code`` (ISO 3166 alpha-3, as SAT lists it), or None."""
    from .resources import sat_catalog

    return sat_catalog("c_Pais").get(code) if isinstance(code, str) else None


def foreign_countries() -> list[tuple[str, str]]:
    """(code, name) of every country a foreign receptor may reside in: c_Pais without MEX, by name."""
    from .resources import sat_catalog

    return sorted(((k, v) for k, v in sat_catalog("c_Pais").items() if k != "MEX"), key=lambda kv: kv[1])


def _foreign(r: _Issues, rfc: str, country: str, tax_id: str) -> None:
    if rfc != RFC_EXTRANJERO:
        if r.has("rfc"):
            return
        if country:
            r.add("CFDI40151", "foreign_country", "El país de residencia fiscal solo se indica con el RFC de "
                                                  "extranjero XEXX010101000.")
        if tax_id:
            r.add("CFDI40154", "foreign_tax_id", "El número de registro tributario extranjero solo se indica con "
                                                 "el RFC de extranjero XEXX010101000.")
        return
    if not country:
        r.add("CFDI40150", "foreign_country", "Con RFC de extranjero, elige tu país de residencia fiscal.")
    elif country == "MEX":
        r.add("CFDI40152", "foreign_country", "La residencia fiscal de un extranjero no puede ser México: si "
                                              "resides en México, factura con tu propio RFC.")
    elif country_name(country) is None:
        r.add("CFDI40150", "foreign_country", f"El país «{country[:10]}» no existe en el catálogo del SAT; elige "
                                              "uno de la lista.")
    if not tax_id:
        r.add("CFDI40153", "foreign_tax_id", "Con RFC de extranjero, escribe tu número de registro tributario "
                                             "(tax id) de tu país de residencia.")
        return
    if len(tax_id) > TAX_ID_MAX:
        r.add("CFDI40155", "foreign_tax_id", f"El número de registro tributario admite hasta {TAX_ID_MAX} "
                                             "caracteres.")
    elif _NAME_REFUSED.search(tax_id):
        r.add("CFDI40155", "foreign_tax_id", "El número de registro tributario no puede llevar «|» ni caracteres "
                                             "de control.")
    elif country in TAX_ID_FORMATS and not TAX_ID_FORMATS[country][0].match(tax_id):
        r.add("CFDI40155", "foreign_tax_id", f"El número de registro tributario de {country_name(country)} lleva "
                                             f"{TAX_ID_FORMATS[country][1]} (catálogo c_Pais del SAT).")
