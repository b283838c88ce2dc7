"""`cfdi_sample` writes sealed documents that pass the engine's verification and SAT's XSLT."""

import pytest
from django.core.management import CommandError, call_command
from lxml import etree

from invoicing.cfdi.cadena import cadena_original
from invoicing.cfdi.testcsd import generate_test_csd
from invoicing.cfdi.verify import verify


@pytest.mark.parametrize("kind", ["ingreso", "global", "egreso"])
def test_samples_of_every_kind_verify(tmp_path, kind):
    cer, key, password = generate_test_csd("EKU9003173C9", "ESCUELA KEMPER URGATE",
                                           serial_digits="30001000000500003416")
    (tmp_path / "csd.cer").write_bytes(cer)
    (tmp_path / "csd.key").write_bytes(key)
    call_command("cfdi_sample", kind=kind, count=5, out=str(tmp_path), seed=3,
                 cer=str(tmp_path / "csd.cer"), key=str(tmp_path / "csd.key"), password=password)
    files = sorted(tmp_path.glob(f"{kind}_*.xml"))
    assert len(files) == 5
    for path in files:
        result = verify(path.read_bytes())
        assert result.ok, result.summary()
        root = etree.fromstring(path.read_bytes())
        assert root.get("TipoDeComprobante") == ("E" if kind == "egreso" else "I")
        assert root.get("NoCertificado") == "30001000000500003416"
        assert cadena_original(root).startswith("||4.0|")


def test_same_seed_gives_the_same_tickets(tmp_path):
    for name in ("a", "b"):
        call_command("cfdi_sample", kind="ingreso", count=2, out=str(tmp_path / name), seed=9)
    strip = lambda p: etree.fromstring(p.read_bytes()).find("{http://www.sat.gob.mx/cfd/4}Conceptos")  # noqa: E731
    a, b = strip(tmp_path / "a" / "ingreso_0001.xml"), strip(tmp_path / "b" / "ingreso_0001.xml")
    assert etree.tostring(a) == etree.tostring(b)


def test_partial_csd_options_are_refused(tmp_path):
    with pytest.raises(CommandError, match="juntos"):
        call_command("cfdi_sample", out=str(tmp_path), cer="x.cer")
