"""A foreign customer's invoice (RFC XEXX010101000): the engine builds and seals one that passes SAT's XSD, SAT's
cadena XSLT, the engine's own rules and cfdi_verify; and refuses the receptor SAT would refuse."""

import dataclasses

import pytest
from lxml import etree

from invoicing.cfdi.builder import build_ingreso
from invoicing.cfdi.inputs import Receptor
from invoicing.cfdi.receptor import receptor_clean, receptor_issues
from invoicing.cfdi.resources import CFDI_NS
from invoicing.cfdi.seal import seal_document
from invoicing.cfdi.validation import validate
from invoicing.cfdi.verify import verify
from invoicing.cfdi.xml import to_bytes

FOREIGN = Receptor("XEXX010101000", "JOHN SMITH", "06600", "616", "S01", residencia_fiscal="USA",
                   num_reg_id_trib="123456789")


@pytest.fixture
def foreign_doc(emisor, issued_at, ticket):
    return build_ingreso([ticket], emisor=emisor, receptor=FOREIGN, issued_at=issued_at, lugar_expedicion="06600",
                         serie="A", folio="18")


def codes(doc):
    return {i.code for i in validate(doc) if i.severity == "error"}


def test_an_xexx_invoice_is_valid_sealed_and_verifiable(foreign_doc, csd, issued_at, sat_schema, sat_cadena):
    assert [i for i in validate(foreign_doc, now=issued_at, csd=csd) if i.severity == "error"] == []
    sealed = seal_document(foreign_doc, csd)
    xml = to_bytes(sealed)
    sat_schema.assertValid(etree.fromstring(xml))
    receptor = etree.fromstring(xml).find(f"{{{CFDI_NS}}}Receptor")
    assert dict(receptor.attrib) == {"Rfc": "XEXX010101000", "Nombre": "JOHN SMITH", "DomicilioFiscalReceptor": "06600",
                                     "ResidenciaFiscal": "USA", "NumRegIdTrib": "123456789",
                                     "RegimenFiscalReceptor": "616", "UsoCFDI": "S01"}
    assert "|XEXX010101000|JOHN SMITH|06600|USA|123456789|616|S01|" in sat_cadena(etree.fromstring(xml))
    checks = {c.name: c.ok for c in verify(xml).checks}  # not stamped yet: no TimbreFiscalDigital to check
    assert (checks["xsd"], checks["sello"]) == (True, True), checks


@pytest.mark.parametrize(("change", "code"), [
    ({"residencia_fiscal": None}, "CFDI40150"),
    ({"residencia_fiscal": "MEX"}, "CFDI40152"),
    ({"residencia_fiscal": "XYZ"}, "CFDI40150"),
    ({"num_reg_id_trib": None}, "CFDI40153"),
    ({"num_reg_id_trib": "12345"}, "CFDI40155"),  # c_Pais: USA's tax id is 9 digits
    ({"regimen_fiscal": "601"}, "CFDI40159"),
    ({"uso_cfdi": "G03"}, "CFDI40161"),
    ({"domicilio_fiscal": "42501"}, "CFDI40149"),  # a foreigner's postal code is the LugarExpedicion
])
def test_the_engine_refuses_what_sat_refuses_in_a_foreign_receptor(foreign_doc, change, code):
    foreign_doc.receptor = dataclasses.replace(foreign_doc.receptor, **change)
    assert code in codes(foreign_doc)


def test_foreign_fields_are_refused_with_a_mexican_rfc(foreign_doc):
    foreign_doc.receptor = dataclasses.replace(foreign_doc.receptor, rfc="XIQB891116QE4", nombre="BERENICE XIMO",
                                               domicilio_fiscal="26015", regimen_fiscal="612", uso_cfdi="G03")
    assert {"CFDI40151", "CFDI40154"} <= codes(foreign_doc)


def test_cleaning_a_foreign_receptor():
    clean = receptor_clean(rfc="xexx-010101-000", name="John Smith", tax_regime="616", postal_code="90210",
                           cfdi_use="s01", foreign_country=" usa ", foreign_tax_id="12-3456789")
    # An EIN is written with a dash; SAT's c_Pais format for USA is the 9 digits. The postal code given is not
    # the invoice's: a foreigner's is the place of issue.
    assert (clean.rfc, clean.postal_code, clean.foreign_country, clean.foreign_tax_id) == (
        "XEXX010101000", "", "USA", "123456789")
    assert receptor_issues(rfc=clean.rfc, name=clean.name, tax_regime=clean.tax_regime, postal_code=clean.postal_code,
                           cfdi_use=clean.cfdi_use, foreign_country=clean.foreign_country,
                           foreign_tax_id=clean.foreign_tax_id) == []
    # A country without a format in c_Pais takes any 1-40 characters, separators kept.
    assert receptor_clean(rfc="XEXX010101000", name="A", tax_regime="616", postal_code="", cfdi_use="S01",
                          foreign_country="DEU", foreign_tax_id="DE 123-456").foreign_tax_id == "DE 123-456"


def test_publico_en_general_is_still_not_for_a_person():
    issues = receptor_issues(rfc="XAXX010101000", name="JUAN", tax_regime="616", postal_code="06600",
                             cfdi_use="S01")
    assert [i.code for i in issues] == ["RFC_GENERICO"]
