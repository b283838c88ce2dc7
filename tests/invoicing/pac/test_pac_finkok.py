"""Finkok adapter against a fake Finkok that answers like the captured exchanges (PROTOCOLS.md §1)."""

import base64
import time

import pytest
from fakes import FINKOK_USER

from invoicing.pac.base import CANCELLED, IN_PROCESS, REJECTED, PacError
from invoicing.pac.finkok import FinkokPac

UUID = "7ED34E9C-1B2A-4C3D-8E9F-0A1B2C3D4E5F"


def test_stamp_returns_uuid_and_tfd_fields(finkok, finkok_server, sealed_xml):
    result = finkok.stamp(sealed_xml)

    assert result.uuid == result.uuid.upper() and len(result.uuid) == 36
    assert result.sat_certificate_number == "30001000000400002495"
    assert result.rfc_prov_certif == "CVD110412TF6"
    assert result.stamped_at.tzinfo is not None
    assert b"TimbreFiscalDigital" in result.stamped_xml and result.stamped_xml.startswith(b"<?xml")
    assert result.already_stamped is False
    call = finkok_server.calls("stamp")[0]
    # base64 of the UTF-8 bytes, once; qualified children in the stamp namespace, SOAPAction quoted.
    assert base64.b64decode(call["fields"]["xml"].text) == sealed_xml
    assert call["path"] == "/servicios/soap/stamp"


def test_stamping_the_same_xml_twice_gives_the_same_uuid_marked_already_stamped(finkok, sealed_xml):
    first = finkok.stamp(sealed_xml)
    second = finkok.stamp(sealed_xml)

    assert second.uuid == first.uuid
    assert second.already_stamped is True


def test_307_without_data_is_recovered_with_stamped(finkok, finkok_server, sealed_xml):
    first = finkok.stamp(sealed_xml)
    finkok_server.modes["stamp"] = "307_empty"

    again = finkok.stamp(sealed_xml)

    assert again.uuid == first.uuid and again.already_stamped
    assert len(finkok_server.calls("stamp")) == 1 + 1 + finkok.retry_307_attempts
    assert len(finkok_server.calls("stamped")) == 1


def test_307_without_data_and_nothing_to_recover_is_transient(finkok, finkok_server, sealed_xml):
    finkok.stamp(sealed_xml)
    finkok_server.modes.update({"stamp": "307_empty", "stamped": "603"})

    with pytest.raises(PacError) as exc:
        finkok.stamp(sealed_xml)

    assert exc.value.code == "307" and exc.value.permanent is False


def test_sat_validation_error_is_permanent_with_readable_message(finkok, finkok_server, sealed_xml):
    finkok_server.modes["stamp"] = "cfdi40102"

    with pytest.raises(PacError) as exc:
        finkok.stamp(sealed_xml)

    assert exc.value.code == "CFDI40102"
    assert exc.value.permanent is True
    assert "digestión" in exc.value.message
    assert "CFDI40102" in exc.value.raw


@pytest.mark.parametrize(
    ("mode", "code", "permanent", "words"),
    [
        ("401", "401", True, "72 horas"),
        ("705", "705", True, "estructura"),
        ("718", "718", True, "timbres"),
        ("708", "708", False, "SAT"),
    ],
)
def test_incidence_families_map_to_permanence(finkok, finkok_server, sealed_xml, mode, code, permanent, words):
    finkok_server.modes["stamp"] = mode

    with pytest.raises(PacError) as exc:
        finkok.stamp(sealed_xml)

    assert (exc.value.code, exc.value.permanent) == (code, permanent)
    assert words.lower() in exc.value.message.lower()


def test_bad_credentials_are_permanent(finkok_server, sealed_xml):
    pac = FinkokPac(username=FINKOK_USER, password="wrong", base_url=finkok_server.url)

    with pytest.raises(PacError) as exc:
        pac.stamp(sealed_xml)

    assert exc.value.code == "300" and exc.value.permanent


def test_missing_password_is_a_configuration_error(finkok_server, sealed_xml):
    with pytest.raises(PacError) as exc:
        FinkokPac(username=FINKOK_USER, password="", base_url=finkok_server.url).stamp(sealed_xml)

    assert exc.value.code == "config" and exc.value.permanent
    assert finkok_server.requests == []


def test_soap_fault_http_500_is_transient_and_keeps_the_raw_text(finkok, finkok_server, sealed_xml):
    finkok_server.modes["stamp"] = "http500"

    with pytest.raises(PacError) as exc:
        finkok.stamp(sealed_xml)

    assert exc.value.code == "http_500" and exc.value.permanent is False
    assert "referenced before assignment" in exc.value.raw
    assert "referenced" not in exc.value.message


def test_malformed_body_is_transient(finkok, finkok_server, sealed_xml):
    finkok_server.modes["stamp"] = "malformed"

    with pytest.raises(PacError) as exc:
        finkok.stamp(sealed_xml)

    assert exc.value.code == "malformed" and exc.value.permanent is False


def test_timeout_is_transient_and_a_retry_gets_no_second_uuid(finkok, finkok_server, sealed_xml, short_timeout):
    finkok_server.modes["stamp"] = "timeout"
    started = time.monotonic()

    with pytest.raises(PacError) as exc:
        finkok.stamp(sealed_xml)

    assert time.monotonic() - started < 1.5
    assert exc.value.code == "timeout" and exc.value.permanent is False
    # The provider may have stamped before we gave up: the retry must give one UUID for the sale.
    finkok_server.modes.clear()
    first = finkok.stamp(sealed_xml)
    again = finkok.stamp(sealed_xml)
    assert again.uuid == first.uuid
    assert len({uuid for uuid, _ in finkok_server.stamps.values()}) == 1


def test_connection_refused_is_transient(sealed_xml):
    pac = FinkokPac(username=FINKOK_USER, password="x", base_url="http://127.0.0.1:9")

    with pytest.raises(PacError) as exc:
        pac.stamp(sealed_xml)

    assert exc.value.code == "connection" and not exc.value.permanent


# --- cancellation --------------------------------------------------------------------------------------


def test_cancel_sends_pem_certificate_and_key_and_reports_in_process(finkok, finkok_server, emisor_csd):
    result = finkok.cancel(uuid=UUID.lower(), motivo="02", certificate=emisor_csd)

    assert result.status == IN_PROCESS and result.code == "201"
    assert result.acuse.startswith(b"<s:Envelope") and b"CancelaCFDResponse" in result.acuse
    call = finkok_server.calls("cancel")[0]
    item = call["fields"]["UUIDS"][0]
    assert (item.get("UUID"), item.get("Motivo"), item.get("FolioSustitucion")) == (UUID, "02", "")
    assert base64.b64decode(call["fields"]["cer"].text).startswith(b"-----BEGIN CERTIFICATE")
    assert call["fields"]["taxpayer_id"].text == "EKU9003173C9"


def test_cancel_already_cancelled_without_acceptance(finkok, finkok_server, emisor_csd):
    finkok_server.modes["cancel"] = "cancelled"

    assert finkok.cancel(uuid=UUID, motivo="03", certificate=emisor_csd).status == CANCELLED


def test_cancel_no_cancelable_is_rejected(finkok, finkok_server, emisor_csd):
    finkok_server.modes["cancel"] = "no_cancelable"

    result = finkok.cancel(uuid=UUID, motivo="02", certificate=emisor_csd)

    assert result.status == REJECTED and result.code == "no_cancelable"
    assert "relacionados" in result.message


def test_cancel_of_a_cfdi_sat_does_not_know_yet_is_transient(finkok, finkok_server, emisor_csd):
    finkok_server.modes["cancel"] = "205"

    with pytest.raises(PacError) as exc:
        finkok.cancel(uuid=UUID, motivo="02", certificate=emisor_csd)

    assert exc.value.code == "205" and not exc.value.permanent


def test_cancel_with_bad_credentials_is_permanent(finkok_server, emisor_csd):
    pac = FinkokPac(username=FINKOK_USER, password="wrong", base_url=finkok_server.url)

    with pytest.raises(PacError) as exc:
        pac.cancel(uuid=UUID, motivo="02", certificate=emisor_csd)

    assert exc.value.code == "300" and exc.value.permanent


def test_cancel_motivo_01_needs_the_replacement_before_any_call(finkok, finkok_server, emisor_csd):
    with pytest.raises(PacError) as exc:
        finkok.cancel(uuid=UUID, motivo="01", certificate=emisor_csd)

    assert exc.value.code == "208" and exc.value.permanent
    assert finkok_server.requests == []


def test_cancel_motivo_01_sends_the_replacement(finkok, finkok_server, emisor_csd):
    replacement = "11111111-2222-3333-4444-555555555555"

    finkok.cancel(uuid=UUID, motivo="01", replacement_uuid=replacement, certificate=emisor_csd)

    assert finkok_server.calls("cancel")[0]["fields"]["UUIDS"][0].get("FolioSustitucion") == replacement


def test_cancel_sat_down_is_transient(finkok, finkok_server, emisor_csd):
    finkok_server.modes["cancel"] = "708"

    with pytest.raises(PacError) as exc:
        finkok.cancel(uuid=UUID, motivo="02", certificate=emisor_csd)

    assert exc.value.code == "708" and not exc.value.permanent


# --- status and ping -----------------------------------------------------------------------------------


def test_status_of_a_stamped_cfdi(finkok, finkok_server, sealed_xml):
    stamped = finkok.stamp(sealed_xml)

    status = finkok.status(uuid=stamped.uuid, emisor_rfc="EKU9003173C9", receptor_rfc="XIQB891116QE4",
                           total="116.00")

    assert status.estado == "Vigente"
    assert status.es_cancelable == "Cancelable sin aceptación"
    assert status.codigo_estatus.startswith("S - ")
    assert status.validacion_efos == "200"
    fields = finkok_server.calls("get_sat_status")[0]["fields"]
    assert fields["total"].text == "116.00"


def test_status_of_an_unknown_cfdi_is_not_found(finkok):
    status = finkok.status(uuid=UUID, emisor_rfc="EKU9003173C9", receptor_rfc="XIQB891116QE4", total=1)

    assert status.estado == "No Encontrado" and "602" in status.codigo_estatus


def test_status_timeout_is_transient(finkok, finkok_server, short_timeout):
    finkok_server.modes["get_sat_status"] = "timeout"

    with pytest.raises(PacError) as exc:
        finkok.status(uuid=UUID, emisor_rfc="EKU9003173C9", receptor_rfc="XIQB891116QE4", total=1)

    assert exc.value.code == "timeout" and not exc.value.permanent


def test_ping_checks_the_credentials(finkok, finkok_server):
    assert "Conexión correcta con Finkok" in finkok.ping()

    bad = FinkokPac(username=FINKOK_USER, password="wrong", base_url=finkok_server.url)
    with pytest.raises(PacError) as exc:
        bad.ping()
    assert exc.value.permanent and "contraseña" in exc.value.message
