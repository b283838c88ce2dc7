import base64
from datetime import UTC, datetime

import pytest

from invoicing.cfdi.csd import CsdError, load_csd, no_certificado_from_serial, read_certificate
from invoicing.cfdi.testcsd import generate_test_csd

PASSWORD = "12345678a"
VALID_FROM = datetime(2023, 5, 18, 11, 43, 51, tzinfo=UTC)
VALID_TO = datetime(2027, 5, 18, 11, 43, 51, tzinfo=UTC)
IN_FORCE = datetime(2026, 11, 21, tzinfo=UTC)


def generated(rfc="EKU9003173C9", name="ESCUELA KEMPER URGATE SA DE CV", valid_from=VALID_FROM,
              valid_to=VALID_TO, serial="30001000000500003416", **kwargs):
    cer, key, _ = generate_test_csd(rfc, name, valid_from, valid_to, serial, password=PASSWORD, **kwargs)
    return cer, key


def test_csd_loads_with_number_rfc_name_and_validity():
    csd = load_csd(*generated(), PASSWORD, at=IN_FORCE)
    assert (csd.no_certificado, csd.rfc, csd.legal_name) == (
        "30001000000500003416", "EKU9003173C9", "ESCUELA KEMPER URGATE SA DE CV",
    )
    assert (csd.info.valid_from, csd.info.valid_to) == (VALID_FROM, VALID_TO)
    assert csd.info.is_csd


def test_persona_fisica_csd():
    cer, key = generated("XIQB891116QE4", "BERENICE XIMO QUEZADA", serial="30001000000400002336")
    csd = load_csd(cer, key, PASSWORD, at=IN_FORCE, expected_rfc="XIQB891116QE4")
    assert (csd.no_certificado, csd.rfc) == ("30001000000400002336", "XIQB891116QE4")


def test_no_certificado_is_ascii_inside_the_serial():
    assert no_certificado_from_serial(0x3330303031303030303030343030303032343336) == "30001000000400002436"


def test_wrong_password_says_so():
    with pytest.raises(CsdError) as exc:
        load_csd(*generated(), "otra", at=IN_FORCE)
    assert exc.value.code == "CSD_PASSWORD"
    assert "contraseña" in str(exc.value)


def test_expired_certificate_is_refused():
    cer, key = generated(valid_from=datetime(2019, 6, 17, tzinfo=UTC), valid_to=datetime(2023, 6, 17, tzinfo=UTC))
    with pytest.raises(CsdError) as exc:
        load_csd(cer, key, PASSWORD, at=IN_FORCE)
    assert exc.value.code == "CFDI40106"
    assert "venció el 17/06/2023" in str(exc.value)


def test_certificate_not_yet_valid_is_refused():
    with pytest.raises(CsdError) as exc:
        load_csd(*generated(), PASSWORD, at=datetime(2023, 1, 1, tzinfo=UTC))
    assert exc.value.code == "CFDI40106"
    assert "aún no es válido" in str(exc.value)


def test_rfc_of_another_merchant_is_refused():
    with pytest.raises(CsdError) as exc:
        load_csd(*generated(), PASSWORD, at=IN_FORCE, expected_rfc="CACX7605101P8")
    assert exc.value.code == "CFDI40139"
    assert "EKU9003173C9" in str(exc.value) and "CACX7605101P8" in str(exc.value)


def test_key_of_another_certificate_is_refused():
    cer, _ = generated()
    _, key = generated("CACX7605101P8", "XOCHILT CASAS CHAVEZ", serial="30001000000400002451", new_key=True)
    with pytest.raises(CsdError) as exc:
        load_csd(cer, key, PASSWORD, at=IN_FORCE)
    assert exc.value.code == "CSD_PAR"


def test_fiel_is_refused():
    cer, key, pw = generate_test_csd("CACX7605101P8", "XOCHILT CASAS CHAVEZ", fiel=True)
    with pytest.raises(CsdError) as exc:
        load_csd(cer, key, pw)
    assert exc.value.code == "CSD_NO_ES_CSD"
    assert "e.firma" in str(exc.value)


def test_garbage_files_are_refused():
    with pytest.raises(CsdError):
        load_csd(b"not a certificate", b"nor a key", PASSWORD)
    cer, _ = generated()
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
    assert csd.info.verify(b"x", base64.b64decode(csd.sign(b"x")))


def test_loaded_keys_are_cached():
    cer, key = generated()
    a = load_csd(cer, key, PASSWORD, at=IN_FORCE)
    b = load_csd(bytes(cer), bytes(key), PASSWORD, at=IN_FORCE)
    assert a is b


# --- Cross-checks against SAT's own test CSDs in ../shared/sat/csd (skipped when it is absent) ------------


@pytest.fixture(scope="module")
def sat_files(shared_sat):
    def files(rfc, year):
        base = shared_sat / "csd" / rfc
        return (base / f"{rfc}_csd_{year}.cer").read_bytes(), (base / f"{rfc}_csd_{year}.key").read_bytes()

    return files


def test_sats_test_csd_loads_with_number_rfc_name_and_validity(sat_files):
    csd = load_csd(*sat_files("EKU9003173C9", 2023), PASSWORD, at=IN_FORCE)
    assert (csd.no_certificado, csd.rfc, csd.legal_name) == (
        "30001000000500003416", "EKU9003173C9", "ESCUELA KEMPER URGATE SA DE CV",
    )
    assert (csd.info.valid_from, csd.info.valid_to) == (VALID_FROM, VALID_TO)
    assert csd.info.is_csd
    # The generated twin the other tests use reads the same, field for field.
    twin = read_certificate(generated()[0])
    for field in ("no_certificado", "rfc", "legal_name", "valid_from", "valid_to", "is_csd"):
        assert getattr(twin, field) == getattr(csd.info, field), field


@pytest.mark.parametrize(
    ("rfc", "number"),
    [("CACX7605101P8", "30001000000400002451"), ("XIQB891116QE4", "30001000000400002336")],
)
def test_sats_persona_fisica_csds(sat_files, rfc, number):
    csd = load_csd(*sat_files(rfc, 2019), PASSWORD, check_validity=False, expected_rfc=rfc)
    assert (csd.no_certificado, csd.rfc) == (number, rfc)


def test_sats_expired_test_csd_and_wrong_password_are_refused(sat_files):
    with pytest.raises(CsdError) as exc:
        load_csd(*sat_files("EKU9003173C9", 2019), PASSWORD, at=IN_FORCE)
    assert exc.value.code == "CFDI40106"
    assert "venció el 17/06/2023" in str(exc.value)
    with pytest.raises(CsdError) as exc:
        load_csd(*sat_files("EKU9003173C9", 2023), "otra")
    assert exc.value.code == "CSD_PASSWORD"


def test_sats_key_of_another_certificate_is_refused(sat_files):
    cer, _ = sat_files("EKU9003173C9", 2023)
    _, key = sat_files("CACX7605101P8", 2019)
    with pytest.raises(CsdError) as exc:
        load_csd(cer, key, PASSWORD)
    assert exc.value.code == "CSD_PAR"
