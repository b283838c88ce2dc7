"""Cross-checks against SAT's official XSD and XSLT in ../shared/sat/xml (skipped when it is absent).

The engine and the rest of the suite use the copies satcfdi ships (invoicing/cfdi/resources.py). These tests
prove those copies are SAT's files and that documents the engine writes pass SAT's own schema and transform.
"""

import random

import pytest
from lxml import etree

from invoicing.cfdi.builder import build_egreso, build_global, build_ingreso
from invoicing.cfdi.cadena import fast_cadena
from invoicing.cfdi.inputs import GlobalInfo, Receptor, Related
from invoicing.cfdi.resources import CADENA40_XSLT, load_schema, load_xslt, sat_root
from invoicing.cfdi.samples import random_ticket
from invoicing.cfdi.seal import seal_document
from invoicing.cfdi.xml import to_bytes

XS = "http://www.w3.org/2001/XMLSchema"
XSL = "http://www.w3.org/1999/XSL/Transform"


def _meaning(path) -> bytes:
    """The file's canonical XML without what cannot change a validation or a transform: comments,
    xs:annotation documentation, and indentation (whitespace-only text outside xsl:text)."""
    parser = etree.XMLParser(remove_comments=True, no_network=True, resolve_entities=False, load_dtd=False)
    tree = etree.parse(str(path), parser)
    for annotation in list(tree.iter(f"{{{XS}}}annotation")):
        annotation.getparent().remove(annotation)
    for el in tree.iter(etree.Element):
        if el.tag == f"{{{XSL}}}text":
            continue
        if el.text is not None and not el.text.strip():
            el.text = None
        if el.tail is not None and not el.tail.strip():
            el.tail = None
    return etree.tostring(tree, method="c14n")


def test_satcfdi_ships_sats_official_xsd_and_xslt(official_sat_xml):
    official = sorted(p for p in official_sat_xml.rglob("*") if p.suffix in (".xsd", ".xslt"))
    assert len(official) >= 30
    different = [
        str(p.relative_to(official_sat_xml)) for p in official
        if not (sat_root() / p.relative_to(official_sat_xml)).is_file()
        or _meaning(p) != _meaning(sat_root() / p.relative_to(official_sat_xml))
    ]
    assert different == [], "satcfdi's copy differs from SAT's official file"


@pytest.fixture(scope="module")
def sat_schema(official_sat_xml):
    return load_schema(official_sat_xml)


@pytest.fixture(scope="module")
def sat_cadena(official_sat_xml):
    xslt = load_xslt(official_sat_xml / CADENA40_XSLT)
    return lambda root: str(xslt(etree.ElementTree(root)))


def _documents(emisor, receptor, issued_at):
    rng = random.Random(15)
    tickets = [random_ticket(rng, f"T-{n}") for n in range(1, 8)]
    common = {"emisor": emisor, "issued_at": issued_at, "lugar_expedicion": "42501"}
    return {
        "ingreso": build_ingreso(tickets[:3], receptor=receptor, **common),
        "global": build_global(tickets, info=GlobalInfo("04", "11", 2026), **common),
        "egreso": build_egreso(tickets[3:4], receptor=Receptor.publico_en_general("42501", "G02"),
                               related=[Related("01", ("6D7434A6-E3F2-47AD-9E4C-08849946AFA0",))],
                               forma_pago="04", **common),
    }


@pytest.mark.parametrize("kind", ["ingreso", "global", "egreso"])
def test_engine_documents_pass_sats_official_schema_and_cadena(
    sat_schema, sat_cadena, csd, emisor, receptor, issued_at, kind
):
    c = _documents(emisor, receptor, issued_at)[kind]
    root = etree.fromstring(to_bytes(seal_document(c, csd)))
    assert sat_schema.validate(root), sat_schema.error_log
    assert sat_cadena(root) == fast_cadena(c)


def test_sats_stamped_samples_pass_sats_official_schema(sat_schema, shared_sat):
    samples = sorted((shared_sat / "samples").glob("*.xml"))
    assert len(samples) >= 4
    for path in samples:
        assert sat_schema.validate(etree.parse(str(path))), (path.name, sat_schema.error_log)
