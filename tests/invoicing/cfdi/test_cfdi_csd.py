from datetime import UTC, datetime
from pathlib import Path

import pytest

from invoicing.cfdi.csd import CsdError, load_csd, no_certificado_from_serial, read_certificate
from invoicing.cfdi.testcsd import generate_test_csd

SHARED_SAT = Path(__file__).resolve().parents[3] / ".." / "shared" / "sat"
CSD_DIR = SHARED_SAT / "csd"
PASSWORD = "12345678a"


def files(rfc, year):
    base = CSD_DIR / rfc
    return (base / f"{rfc}_csd_{year}.cer").read_bytes(), (base / f"{rfc}_csd_{year}.key").read_bytes()


def test_sat_test_csd_loads_with_number_rfc_name_and_validity(csd):
    assert csd.no_certificado == "30001000000500003416"
    assert csd.rfc == "EKU9003173C9"
    assert csd.legal_name == "ESCUELA KEMPER URGATE SA DE CV"
    assert csd.info.valid_from == datetime(2023, 5, 18, 11, 43, 51, tzinfo=UTC)
    assert csd.info.is_csd


@pytest.mark.parametrize(
    ("rfc", "number"),
    [("CACX7605101P8", "30001000000400002451"), ("XIQB891116QE4", "30001000000400002336")],
)
def test_persona_fisica_csds(rfc, number):
    csd = load_csd(*files(rfc, 2019), PASSWORD, check_validity=False, expected_rfc=rfc)
    assert (csd.no_certificado, csd.rfc) == (number, rfc)


def test_no_certificado_is_ascii_inside_the_serial():
    assert no_certificado_from_serial(0x3330303031303030303030343030303032343336) == "30001000000400002436"


def test_wrong_password_says_so():
    with pytest.raises(CsdError) as exc:
        load_csd(*files("EKU9003173C9", 2023), "otra")
    assert exc.value.code == "CSD_PASSWORD"
    assert "contraseña" in str(exc.value)


def test_expired_certificate_is_refused():
    with pytest.raises(CsdError) as exc:
        load_csd(*files("EKU9003173C9", 2019), PASSWORD)
    assert exc.value.code == "CFDI40106"
    assert "venció el 17/06/2023" in str(exc.value)


def test_certificate_not_yet_valid_is_refused():
    with pytest.raises(CsdError) as exc:
        load_csd(*files("EKU9003173C9", 2023), PASSWORD, at=datetime(2023, 1, 1, tzinfo=UTC))
    assert "aún no es válido" in str(exc.value)


def test_rfc_of_another_merchant_is_refused():
    with pytest.raises(CsdError) as exc:
        load_csd(*files("EKU9003173C9", 2023), PASSWORD, expected_rfc="CACX7605101P8")
    assert exc.value.code == "CFDI40139"
    assert "EKU9003173C9" in str(exc.value) and "CACX7605101P8" in str(exc.value)


def test_key_of_another_certificate_is_refused():
    cer, _ = files("EKU9003173C9", 2023)
    _, key = files("CACX7605101P8", 2019)
    with pytest.raises(CsdError) as exc:
        load_csd(cer, key, PASSWORD)
    assert exc.value.code == "CSD_PAR"


def test_fiel_is_refused():
    # No FIEL ships in ../shared/sat/csd, so one is generated with a FIEL's shape (no OU, more key usages).
    cer, key, pw = generate_test_csd("CACX7605101P8", "XOCHILT CASAS CHAVEZ", fiel=True)
    with pytest.raises(CsdError) as exc:
        load_csd(cer, key, pw)
    assert exc.value.code == "CSD_NO_ES_CSD"
    assert "e.firma" in str(exc.value)


def test_garbage_files_are_refused():
    with pytest.raises(CsdError):
        load_csd(b"not a certificate", b"nor a key", PASSWORD)
    cer, _ = files("EKU9003173C9", 2023)
    with pytest.raises(CsdError) as exc:
        load_csd(cer, b"nor a key", PASSWORD)
    assert exc.value.code == "CSD_KEY"


def test_generated_test_csd_has_sat_format():
    cer, key, pw = generate_test_csd("AAA010101AAA", "EMPRESA DEMO", serial_digits="30001000000912345678")
    info = read_certificate(cer)
    assert (info.no_certificado, info.rfc, info.legal_name, info.is_csd) == (
        "30001000000912345678", "AAA010101AAA", "EMPRESA DEMO", True,
    )
    csd = load_csd(cer, key, pw, expected_rfc="AAA010101AAA")
    assert csd.info.verify(b"x", __import__("base64").b64decode(csd.sign(b"x")))


def test_loaded_keys_are_cached():
    a = load_csd(*files("EKU9003173C9", 2023), PASSWORD)
    b = load_csd(*files("EKU9003173C9", 2023), PASSWORD)
    assert a is b
