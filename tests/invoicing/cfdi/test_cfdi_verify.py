import re
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from invoicing.cfdi.builder import build_ingreso
from invoicing.cfdi.cadena import tfd_cadena_original
from invoicing.cfdi.csd import load_csd
from invoicing.cfdi.parser import ParseError, parse_cfdi
from invoicing.cfdi.resources import CFDI_NS, TFD_NS
from invoicing.cfdi.seal import seal_document
from invoicing.cfdi.testcsd import generate_test_csd
from invoicing.cfdi.verify import verify
from invoicing.cfdi.xml import to_bytes

REPO = Path(__file__).resolve().parents[3]
UUID = "6D7434A6-E3F2-47AD-9E4C-08849946AFA0"
PAC_NO_CERTIFICADO = "30001000009900000001"


@pytest.fixture(scope="module")
def pac_csd():
    """Stands in for the SAT certificate that signs a PAC's TimbreFiscalDigital (its own key, not the emisor's)."""
    cer, key, password = generate_test_csd("SAT970701NN3", "SERVICIO DE ADMINISTRACION TRIBUTARIA",
                                           serial_digits=PAC_NO_CERTIFICADO, new_key=True)
    return load_csd(cer, key, password)


def add_tfd(sealed: etree._Element, pac_csd) -> bytes:
    """TimbreFiscalDigital 1.1 over the sealed document, SelloSAT signed as SAT signs it."""
    tfd = etree.Element(f"{{{TFD_NS}}}TimbreFiscalDigital", nsmap={"tfd": TFD_NS})
    for name, value in (
        ("Version", "1.1"),
        ("UUID", UUID),
        ("FechaTimbrado", "2026-11-21T12:31:00"),
        ("RfcProvCertif", "SPR190613I52"),
        ("SelloCFD", sealed.get("Sello")),
        ("NoCertificadoSAT", pac_csd.no_certificado),
    ):
        tfd.set(name, value)
    tfd.set("SelloSAT", pac_csd.sign(tfd_cadena_original(tfd).encode("utf-8")))
    etree.SubElement(sealed, f"{{{CFDI_NS}}}Complemento").append(tfd)
    return to_bytes(sealed)


@pytest.fixture
def stamped(csd, pac_csd, emisor, receptor, issued_at, ticket):
    c = build_ingreso([ticket], emisor=emisor, receptor=receptor, issued_at=issued_at, lugar_expedicion="06600",
                      serie="A", folio="17")
    return add_tfd(seal_document(c, csd), pac_csd)


def _tamper(data: bytes, pattern: bytes, repl) -> bytes:
    out, n = re.subn(pattern, repl, data, count=1)
    assert n == 1
    return out


TAMPERS = {
    "total": (rb'Total="([0-9.]+)"', b'Total="1.00"'),
    "receptor": (rb'(<cfdi:Receptor[^>]*Nombre=")[^"]*', rb"\1OTRO NOMBRE"),
    # A generated document's seal changes every run: flip its first character, whatever it is.
    "sello_cfd": (rb'SelloCFD="(.)', lambda m: b'SelloCFD="' + (b"B" if m.group(1) == b"A" else b"A")),
    "sello_sat": (rb'SelloSAT="(.{10})', b'SelloSAT="AAAAAAAAAA'),
    "uuid": (rb'UUID="(.)', b'UUID="0'),
}


def test_stamped_document_verifies_with_its_sat_certificate(stamped, pac_csd, csd):
    result = verify(stamped, [csd.info, pac_csd.info])
    assert result.ok, result.summary()
    assert result.uuid == UUID
    assert [c.name for c in result.checks] == ["xsd", "sello", "timbre", "sello_sat"]
    assert next(c for c in result.checks if c.name == "sello_sat").message == "SelloSAT válido"


def test_sello_sat_is_checked_only_with_the_certificate_that_signed_it(stamped, csd):
    result = verify(stamped, [csd.info])
    check = next(c for c in result.checks if c.name == "sello_sat")
    assert check.ok and f"sin verificar (falta el certificado {PAC_NO_CERTIFICADO})" in check.message


def test_parser_reads_timbre_and_tfd_cadena(stamped, pac_csd):
    parsed = parse_cfdi(stamped)
    t = parsed.timbre
    assert t.uuid == UUID
    assert (t.rfc_prov_certif, t.no_certificado_sat, t.version) == ("SPR190613I52", PAC_NO_CERTIFICADO, "1.1")
    assert t.sello_cfd == parsed.comprobante.sello
    cadena = tfd_cadena_original(parsed.tfd_element)
    assert cadena == f"||1.1|{t.uuid}|{t.fecha_timbrado}|{t.rfc_prov_certif}|{t.sello_cfd}|{t.no_certificado_sat}||"
    assert (parsed.comprobante.emisor.rfc, parsed.comprobante.serie, parsed.comprobante.folio) == (
        "EKU9003173C9", "A", "17",
    )


@pytest.mark.parametrize("what", TAMPERS)
def test_tampered_copies_fail(stamped, pac_csd, what):
    result = verify(_tamper(stamped, *TAMPERS[what]), [pac_csd.info])
    assert not result.ok


def test_not_xml_and_entities_are_refused():
    assert not verify(b"<nope").ok
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    with pytest.raises(ParseError):
        parse_cfdi(bomb)
    with pytest.raises(ParseError):
        parse_cfdi(b"<a/>" * 10, max_bytes=20)


def test_cfdi_33_lines_are_readable():
    xml = b"""<?xml version="1.0" encoding="UTF-8"?>
<cfdi:Comprobante xmlns:cfdi="http://www.sat.gob.mx/cfd/3" Version="3.3" Fecha="2021-01-01T10:00:00" SubTotal="100.00"
 Moneda="MXN" Total="116.00" TipoDeComprobante="I" LugarExpedicion="06600" Sello="" NoCertificado="" Certificado="">
 <cfdi:Emisor Rfc="EKU9003173C9" Nombre="X" RegimenFiscal="601"/>
 <cfdi:Receptor Rfc="XAXX010101000" UsoCFDI="G03"/>
 <cfdi:Conceptos><cfdi:Concepto ClaveProdServ="01010101" Cantidad="1.5" ClaveUnidad="H87" Descripcion="Pan"
  ValorUnitario="66.666667" Importe="100.00"><cfdi:Impuestos><cfdi:Traslados><cfdi:Traslado Base="100.00"
  Impuesto="002" TipoFactor="Tasa" TasaOCuota="0.160000" Importe="16.00"/></cfdi:Traslados></cfdi:Impuestos>
 </cfdi:Concepto></cfdi:Conceptos></cfdi:Comprobante>"""
    parsed = parse_cfdi(xml)
    assert parsed.version == "3.3"
    k = parsed.comprobante.conceptos[0]
    assert (k.descripcion, str(k.cantidad), k.objeto_imp, str(k.traslados[0].importe)) == ("Pan", "1.5", "02", "16.00")


def _manage(*args):
    return subprocess.run(
        [sys.executable, "manage.py", "cfdi_verify", *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_cfdi_verify_command_passes_good_files_and_fails_tampered(tmp_path, stamped, pac_csd):
    good = tmp_path / "timbrado.xml"
    good.write_bytes(stamped)
    cert = tmp_path / "sat.cer"
    cert.write_bytes(pac_csd.info.der)
    bad = tmp_path / "alterado.xml"
    bad.write_bytes(_tamper(stamped, *TAMPERS["total"]))
    ok = _manage(good, "--sat-cert", cert)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "timbrado.xml: OK" in ok.stdout and "SelloSAT válido" in ok.stdout
    failed = _manage(good, bad, "--sat-cert", cert)
    assert failed.returncode == 1
    assert "alterado.xml: FALLA" in failed.stdout and "timbrado.xml: OK" in failed.stdout


# --- Cross-checks against SAT's stamped samples in ../shared/sat (skipped when it is absent) --------------


@pytest.fixture(scope="module")
def samples(shared_sat):
    found = {p.name[:2]: p for p in sorted((shared_sat / "samples").glob("*.xml"))}
    assert len(found) >= 4
    return found


@pytest.fixture(scope="module")
def sat_certs(shared_sat):
    """SAT's certificates that signed the samples' TFDs, and SAT's EKU 2023 test CSD (it signs sample 06)."""
    certs = [p.read_bytes() for p in sorted((shared_sat / "certs").glob("*.cer"))]
    return certs + [(shared_sat / "csd" / "EKU9003173C9" / "EKU9003173C9_csd_2023.cer").read_bytes()]


@pytest.mark.parametrize("sample", ["01", "03", "05", "06"])
def test_sats_samples_verify(samples, sat_certs, sample):
    result = verify(samples[sample].read_bytes(), sat_certs)
    assert result.ok, result.summary()
    assert result.uuid


@pytest.mark.parametrize(
    ("sample", "cert"),
    [("01", "00001000000708361114"), ("03", "30001000000500003456"), ("06", "30001000000500003416")],
)
def test_sello_sat_of_sats_samples_is_checked_with_the_right_certificate(samples, sat_certs, sample, cert):
    result = verify(samples[sample].read_bytes(), sat_certs)
    check = next(c for c in result.checks if c.name == "sello_sat")
    assert check.ok and "SelloSAT válido" in check.message
    assert parse_cfdi(samples[sample].read_bytes()).timbre.no_certificado_sat == cert


def test_parser_reads_a_pac_sandbox_timbre_and_retenciones(samples):
    parsed = parse_cfdi(samples["03"].read_bytes())
    t = parsed.timbre
    assert t.uuid == "AF124DC7-BD75-5EFF-8EDF-28C1E7D43B1D"
    assert (t.rfc_prov_certif, t.no_certificado_sat, t.version) == ("CVD110412TF6", "30001000000500003456", "1.1")
    assert t.sello_cfd == parsed.comprobante.sello
    cadena = tfd_cadena_original(parsed.tfd_element)
    assert cadena == f"||1.1|{t.uuid}|{t.fecha_timbrado}|{t.rfc_prov_certif}|{t.sello_cfd}|{t.no_certificado_sat}||"
    assert parsed.comprobante.emisor.rfc == "EKU9003173C9"
    assert parsed.comprobante.conceptos and parsed.comprobante.conceptos[0].retenciones


@pytest.mark.parametrize("sample", ["01", "03"])
@pytest.mark.parametrize("what", TAMPERS)
def test_tampered_copies_of_sats_samples_fail(samples, shared_sat, sample, what):
    certs = [p.read_bytes() for p in sorted((shared_sat / "certs").glob("*.cer"))]
    assert not verify(_tamper(samples[sample].read_bytes(), *TAMPERS[what]), certs).ok


def test_cfdi_verify_command_on_sats_samples(tmp_path, samples, shared_sat):
    cert_args = []
    for p in sorted((shared_sat / "certs").glob("*.cer")):
        cert_args += ["--sat-cert", p]
    ok = _manage(*samples.values(), *cert_args)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert len(ok.stdout.strip().splitlines()) == len(samples)
    assert "SelloSAT válido" in ok.stdout
    bad = tmp_path / "alterado.xml"
    bad.write_bytes(_tamper(samples["03"].read_bytes(), *TAMPERS["total"]))
    failed = _manage(samples["03"], bad, *cert_args)
    assert failed.returncode == 1
    assert "alterado.xml: FALLA" in failed.stdout
