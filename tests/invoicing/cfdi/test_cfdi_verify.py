import re
import subprocess
import sys
from pathlib import Path

import pytest

from invoicing.cfdi.cadena import tfd_cadena_original
from invoicing.cfdi.parser import ParseError, parse_cfdi
from invoicing.cfdi.verify import verify

SHARED_SAT = Path(__file__).resolve().parents[3] / ".." / "shared" / "sat"

SAMPLES = sorted((SHARED_SAT / "samples").glob("*.xml"))
CERTS = [p.read_bytes() for p in sorted((SHARED_SAT / "certs").glob("*.cer"))]
EKU_2023 = (SHARED_SAT / "csd" / "EKU9003173C9" / "EKU9003173C9_csd_2023.cer").read_bytes()
REPO = Path(__file__).resolve().parents[3]


def test_there_are_samples():
    assert len(SAMPLES) >= 4


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_samples_verify(path):
    result = verify(path.read_bytes(), CERTS + [EKU_2023])
    assert result.ok, result.summary()
    assert result.uuid


@pytest.mark.parametrize(
    ("name", "cert"),
    [("01_real_prod", "00001000000708361114"), ("03_finkok", "30001000000500003456"), ("06_synthetic", "30001000000500003416")],
)
def test_sello_sat_is_checked_with_the_right_certificate(name, cert):
    path = next(p for p in SAMPLES if p.name.startswith(name))
    result = verify(path.read_bytes(), CERTS + [EKU_2023])
    check = next(c for c in result.checks if c.name == "sello_sat")
    assert check.ok and "SelloSAT válido" in check.message


def test_parser_reads_timbre_and_tfd_cadena():
    path = next(p for p in SAMPLES if p.name.startswith("03_"))
    parsed = parse_cfdi(path.read_bytes())
    t = parsed.timbre
    assert t.uuid == "AF124DC7-BD75-5EFF-8EDF-28C1E7D43B1D"
    assert (t.rfc_prov_certif, t.no_certificado_sat, t.version) == ("CVD110412TF6", "30001000000500003456", "1.1")
    assert t.sello_cfd == parsed.comprobante.sello
    cadena = tfd_cadena_original(parsed.tfd_element)
    assert cadena == f"||1.1|{t.uuid}|{t.fecha_timbrado}|{t.rfc_prov_certif}|{t.sello_cfd}|{t.no_certificado_sat}||"
    assert parsed.comprobante.emisor.rfc == "EKU9003173C9"
    assert parsed.comprobante.conceptos and parsed.comprobante.conceptos[0].retenciones


def _tamper(data: bytes, pattern: bytes, repl: bytes) -> bytes:
    out, n = re.subn(pattern, repl, data, count=1)
    assert n == 1
    return out


TAMPERS = {
    "total": (rb'Total="([0-9.]+)"', b'Total="1.00"'),
    "receptor": (rb'(<cfdi:Receptor[^>]*Nombre=")[^"]*', rb"\1OTRO NOMBRE"),
    "sello_cfd": (rb'SelloCFD="(.)', b'SelloCFD="A'),
    "sello_sat": (rb'SelloSAT="(.{10})', b'SelloSAT="AAAAAAAAAA'),
    "uuid": (rb'UUID="(.)', b'UUID="0'),
}


@pytest.mark.parametrize("path", [p for p in SAMPLES if p.name[:2] in ("01", "03")], ids=lambda p: p.name)
@pytest.mark.parametrize("what", TAMPERS)
def test_tampered_copies_fail(path, what):
    pattern, repl = TAMPERS[what]
    result = verify(_tamper(path.read_bytes(), pattern, repl), CERTS)
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


def test_cfdi_verify_command_passes_samples_and_fails_tampered(tmp_path):
    cert_args = []
    for p in sorted((SHARED_SAT / "certs").glob("*.cer")):
        cert_args += ["--sat-cert", p]
    ok = _manage(*SAMPLES, *cert_args)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert len(ok.stdout.strip().splitlines()) == len(SAMPLES)
    assert "SelloSAT válido" in ok.stdout

    src = next(p for p in SAMPLES if p.name.startswith("03_"))
    bad = tmp_path / "alterado.xml"
    bad.write_bytes(_tamper(src.read_bytes(), *TAMPERS["total"]))
    failed = _manage(src, bad, *cert_args)
    assert failed.returncode == 1
    assert "alterado.xml: FALLA" in failed.stdout
