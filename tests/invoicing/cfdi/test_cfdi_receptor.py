"""The receptor rules (invoicing/cfdi/receptor.py), the RFC rule and the régimen ↔ UsoCFDI matrix: one definition
each, pure, and what every other copy used to be is now derived from them."""

import json
import re
import subprocess
from pathlib import Path
from shutil import which

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from invoicing.cfdi import catalogs
from invoicing.cfdi.builder import build_ingreso
from invoicing.cfdi.inputs import Receptor
from invoicing.cfdi.receptor import (
    CAPITAL_PATTERN,
    NAME_MAX,
    postal_code_exists,
    receptor_clean,
    receptor_issues,
    strip_regimen_capital,
)
from invoicing.cfdi.rfc import RFC_BODY, RFC_PATTERN, normalize_rfc, persona_of
from invoicing.cfdi.xml import render
from invoicing.cfdi.xsd import xsd_issues
from portal.shopper.csf import parse_constancia
from tickets.models import validate_rfc

ROOT = Path(__file__).resolve().parents[3]
GOOD = {"rfc": "XIQB891116QE4", "name": "KARLA FUENTE NOLASCO", "tax_regime": "605", "postal_code": "01160",
        "cfdi_use": "S01"}


def issues(**changes):
    return [(i.path, i.code, i.severity) for i in receptor_issues(**{**GOOD, **changes})]


@pytest.mark.parametrize(("typed", "name", "removed"), [
    ("Escuela Kemper Urgate, S.A. de C.V.", "ESCUELA KEMPER URGATE", "S.A. DE C.V."),
    ("Escuela Kemper Urgate SA DE CV", "ESCUELA KEMPER URGATE", "SA DE CV"),
    ("Tienda  Sol S. de R.L. de C.V.", "TIENDA SOL", "S. DE R.L. DE C.V."),
    ("Tienda Sol S de RL", "TIENDA SOL", "S DE RL"),
    ("Fondo Norte SAPI de CV", "FONDO NORTE", "SAPI DE CV"),
    ("Fondo Norte S.A.P.I. de C.V.", "FONDO NORTE", "S.A.P.I. DE C.V."),
    ("Bolsa Uno S.A.B. de C.V.", "BOLSA UNO", "S.A.B. DE C.V."),
    ("Arroyo Abogados SC", "ARROYO ABOGADOS", "SC"),
    ("Arroyo Abogados, S.C.", "ARROYO ABOGADOS", "S.C."),
    ("Amigos del Parque A.C.", "AMIGOS DEL PARQUE", "A.C."),
    ("Amigos del Parque AC", "AMIGOS DEL PARQUE", "AC"),
    ("Ejido Verde SPR de RL", "EJIDO VERDE", "SPR DE RL"),
    ("Nueva Empresa S.A.S. de C.V.", "NUEVA EMPRESA", "S.A.S. DE C.V."),
    ("Casa Roja SA", "CASA ROJA", "SA"),
    ("Juan Pérez", "JUAN PÉREZ", ""),
    ("Juan Salas", "JUAN SALAS", ""),  # "SA" inside a word is not a régimen de capital
    ("Isaac Rosa", "ISAAC ROSA", ""),
    ("S.A. de C.V.", "S.A. DE C.V.", ""),  # nothing left: kept, and refused by the check
])
def test_regimen_de_capital_is_removed(typed, name, removed):
    assert strip_regimen_capital(typed) == (name, removed)


@given(st.text(alphabet="ABCSDEPIRLVN .,|ÑÁ\t", max_size=40))
def test_cleaning_is_idempotent_so_services_may_clean_what_a_form_cleaned(text):
    once = receptor_clean(rfc=text, name=text, tax_regime=text, postal_code=text, cfdi_use=text)
    twice = receptor_clean(rfc=once.rfc, name=once.name, tax_regime=once.tax_regime, postal_code=once.postal_code,
                           cfdi_use=once.cfdi_use)
    assert (twice.rfc, twice.name, twice.tax_regime, twice.postal_code, twice.cfdi_use) == \
        (once.rfc, once.name, once.tax_regime, once.postal_code, once.cfdi_use)
    assert twice.name_removed == ""


def test_capital_pattern_is_the_same_in_javascript():
    node = which("node")
    if node is None:
        pytest.skip("node is not installed: the pattern's JavaScript reading is not checked here")
    names = ["ESCUELA KEMPER URGATE, S.A. DE C.V.", "Fondo Norte sapi de cv", "JUAN SALAS", "Amigos A.C.", "ISAAC"]
    script = ("const re = new RegExp(process.argv[1], 'i');"
              "console.log(JSON.stringify(JSON.parse(process.argv[2]).map(n => { const m = re.exec(n);"
              " return m ? m[0].trim().toUpperCase() : ''; })));")
    out = subprocess.run([node, "-e", script, CAPITAL_PATTERN, json.dumps(names)], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    python = [(m.group(0).strip().upper() if (m := re.search(CAPITAL_PATTERN, n, re.IGNORECASE)) else "")
              for n in names]
    assert json.loads(out) == python == ["S.A. DE C.V.", "SAPI DE CV", "", "A.C.", ""]


def test_a_clean_receptor_has_no_issues():
    assert receptor_issues(**GOOD) == []


@pytest.mark.parametrize(("changes", "expected"), [
    ({"rfc": ""}, ("rfc", "RFC_FORMATO", "error")),
    ({"rfc": "XIQB891116QE"}, ("rfc", "RFC_FORMATO", "error")),
    ({"rfc": "XIQB890231QE4"}, ("rfc", "RFC_FECHA", "error")),
    ({"rfc": "XIQB891116QE5"}, ("rfc", "RFC_DIGITO", "warning")),
    ({"rfc": "XAXX010101000"}, ("rfc", "RFC_GENERICO", "error")),
    ({"name": ""}, ("name", "CFDI40145", "error")),
    ({"name": "KARLA | FUENTE"}, ("name", "NOMBRE_CARACTER", "error")),
    ({"name": "KARLA\x1bFUENTE"}, ("name", "NOMBRE_CARACTER", "error")),
    ({"name": "K" * (NAME_MAX + 1)}, ("name", "NOMBRE_LARGO", "error")),
    ({"name": "PUBLICO EN GENERAL"}, ("name", "CFDI40146", "error")),
    ({"name": "KARLA FUENTE SA DE CV"}, ("name", "REGIMEN_CAPITAL", "warning")),
    ({"tax_regime": ""}, ("tax_regime", "CFDI40157", "error")),
    ({"tax_regime": "999"}, ("tax_regime", "CFDI40157", "error")),
    ({"tax_regime": "601"}, ("tax_regime", "CFDI40158", "error")),
    ({"cfdi_use": ""}, ("cfdi_use", "CFDI40160", "error")),
    ({"cfdi_use": "ZZZ"}, ("cfdi_use", "CFDI40160", "error")),
    ({"cfdi_use": "G03"}, ("cfdi_use", "CFDI40161", "error")),
    ({"cfdi_use": "CN01"}, ("cfdi_use", "CFDI40161", "error")),
    ({"rfc": "EKU9003173C9", "tax_regime": "601", "cfdi_use": "D01"}, ("cfdi_use", "CFDI40161", "error")),
    ({"postal_code": "1160"}, ("postal_code", "CFDI40147", "error")),
    ({"postal_code": "00001"}, ("postal_code", "CFDI40147", "error")),
])
def test_each_rule_has_its_code(changes, expected):
    assert issues(**changes) == [expected]


def test_a_wrong_rfc_does_not_pile_up_persona_errors():
    assert issues(rfc="NOPE", tax_regime="601", cfdi_use="G01") == [("rfc", "RFC_FORMATO", "error")]


def test_generic_rfcs_are_for_the_engine_only():
    publico = {"rfc": "XAXX010101000", "name": "PUBLICO EN GENERAL", "tax_regime": "616", "postal_code": "42501",
               "cfdi_use": "S01"}
    assert receptor_issues(**publico, generic_allowed=True, lugar_expedicion="42501") == []
    assert [i.code for i in receptor_issues(**publico, generic_allowed=True, lugar_expedicion="06600")] == ["CFDI40149"]
    assert [i.code for i in receptor_issues(**{**publico, "tax_regime": "612"}, generic_allowed=True)] == ["CFDI40159"]
    assert [i.code for i in receptor_issues(**publico)] == ["RFC_GENERICO"]


def test_postal_codes_come_from_sats_catalog_without_loading_any_table(db):
    from tickets.catalogs import PostalCode

    assert not PostalCode.objects.exists()
    assert postal_code_exists("06600") and postal_code_exists("42501") and not postal_code_exists("00001")


def test_the_quick_postal_code_lookup_agrees_with_the_xsds_values(monkeypatch):
    from invoicing.cfdi import resources

    values = resources.big_catalog("c_CodigoPostal")
    sample = ["00001", "00100", "06600", "42501", "64000", "99999", "12345", "83000", "2601", "ABCDE"]
    assert [resources._postal_code_in_db(c) for c in sample] == [c in values for c in sample]
    # A satcfdi that stored its keys some other way would make every look-up miss: it falls back instead.
    resources._postal_code_in_db.cache_clear()
    monkeypatch.setattr(resources, "_db_key_protocol", lambda: None)
    assert [resources._postal_code_in_db(c) for c in sample] == [c in values for c in sample]
    resources._postal_code_in_db.cache_clear()


def test_the_nombre_rule_is_the_xsds(emisor, issued_at, ticket):
    """What the rule lets through, SAT's schema accepts; what the schema refuses, the rule refuses first."""
    for name, ok in (("KARLA FUENTE", True), ("KARLA | FUENTE", False), ("Ñ&'<>\"ÁÉ Ü", True),
                     ("K" * NAME_MAX, True), ("K" * (NAME_MAX + 1), False)):
        doc = build_ingreso([ticket], emisor=emisor, receptor=Receptor("XIQB891116QE4", name, "01160", "605", "S01"),
                            issued_at=issued_at, lugar_expedicion="42501")
        doc.no_certificado, doc.sello, doc.certificado = "0" * 20, "c2VsbG8=", "Y2VydA=="
        rule_ok = not [i for i in receptor_issues(**{**GOOD, "name": name}) if i.severity == "error"]
        assert rule_ok is ok
        assert (not xsd_issues(render(doc))) is ok, xsd_issues(render(doc))


# --- one RFC rule ------------------------------------------------------------------------------------------


def test_rfc_is_cleaned_and_typed_in_one_place():
    assert normalize_rfc(" xiqb-891116_qe4. ") == "XIQB891116QE4"
    assert persona_of("EKU9003173C9") == "moral" and persona_of("XIQB891116QE4") == "fisica" and persona_of("X") == ""
    assert RFC_PATTERN.pattern == f"^{RFC_BODY}$"


def test_merchant_rfc_uses_the_rule():
    validate_rfc("EKU9003173C9")
    for bad in ("EKU901373C9", "EKU9013733C9", "XAXX010101000"):  # no month 13 (the old pattern let it by)
        with pytest.raises(ValidationError):
            validate_rfc(bad)


def test_constancia_reader_finds_the_rfc_by_the_rule():
    assert parse_constancia("RFC: EKU9003173C9\nRégimen General de Ley Personas Morales")["rfc"] == "EKU9003173C9"
    assert "rfc" not in parse_constancia("RFC: EKU9013733C9")


def test_no_other_module_spells_an_rfc_pattern():
    spelled = re.compile(r"\[A-Z&?Ñ&?\]\{3,4\}|\[A-ZÑ&\]\{3,4\}")
    offenders = [str(p.relative_to(ROOT)) for folder in ("invoicing", "portal", "tickets", "infra", "static")
                 for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".js") and "migrations" not in p.parts
                 and spelled.search(p.read_text(encoding="utf-8"))]
    assert offenders == ["invoicing/cfdi/rfc.py"]


# --- one matrix ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rfc", ["", "EKU9003173C9", "XIQB891116QE4"])
def test_the_pages_matrix_is_the_rule(rfc):
    data = catalogs.receptor_matrix()
    lists = data["matrix"][data["personas"].get(str(len(rfc)), "")]
    assert lists["regimenes"] == [r.code for r in catalogs.regimenes_for(rfc)]
    for regimen in ["", *lists["regimenes"]]:
        assert lists["usos"][regimen] == [u.code for u in catalogs.usos_for(rfc, regimen)]
        for uso in lists["usos"][regimen]:  # what the page offers, the rule accepts
            if regimen and rfc:
                assert not [i for i in receptor_issues(**{**GOOD, "rfc": rfc, "tax_regime": regimen,
                                                          "cfdi_use": uso}) if i.path != "name"]


def test_the_script_holds_no_copy_of_a_rule():
    script = (ROOT / "static" / "portal" / "fiscal.js").read_text(encoding="utf-8")
    assert not re.search(r"\b6[0-2][0-9]\b|\b[GIDS]0[0-9]\b|CP01|CN01|\b1[23]\b", script)
    assert "data.matrix" in script and "data.personas" in script and "data.rfc_separators" in script
