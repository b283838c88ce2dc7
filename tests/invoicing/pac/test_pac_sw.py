"""SW Sapien adapter against a fake SW that answers like the documented exchanges (PROTOCOLS.md §2)."""

import base64
import json

import pytest
from fakes import SW_PASSWORD, SW_USER

from invoicing.pac import sw as sw_module
from invoicing.pac.base import IN_PROCESS, REJECTED, PacError

UUID = "FE4E71B0-8959-4FB9-8091-F5AC4FB0FEF8"


def test_stamp_authenticates_once_and_sends_multipart_xml(sw, sw_server, sealed_xml, seal):
    first = sw.stamp(sealed_xml)
    second = sw.stamp(seal(total=__import__("decimal").Decimal("232.00")))

    assert first.uuid != second.uuid and first.uuid == first.uuid.upper()
    assert first.rfc_prov_certif == "SPR190613I52"
    assert first.stamped_at.tzinfo is not None and not first.already_stamped
    assert sw_server.auth_count == 1  # the token is cached
    auth = json.loads(sw_server.calls("auth")[0]["body"])
    assert auth == {"user": SW_USER, "password": SW_PASSWORD}
    stamp_call = sw_server.calls("stamp")[0]
    assert stamp_call["path"] == "/cfdi33/v2/stamp/v2"
    assert stamp_call["headers"]["Authorization"].startswith("Bearer T2lYQ0t4")
    assert b'name="xml"' in stamp_call["body"] and sealed_xml in stamp_call["body"]


def test_same_xml_twice_returns_the_stored_stamp_from_the_307(sw, sealed_xml):
    first = sw.stamp(sealed_xml)
    again = sw.stamp(sealed_xml)

    assert again.uuid == first.uuid and again.already_stamped


def test_307_without_stored_data_is_transient(sw, sw_server, sealed_xml):
    sw.stamp(sealed_xml)
    sw_server.modes["stamp"] = "307_empty"

    with pytest.raises(PacError) as exc:
        sw.stamp(sealed_xml)

    assert exc.value.code == "307" and not exc.value.permanent


def test_sat_matrix_error_is_permanent_and_readable(sw, sw_server, sealed_xml):
    sw_server.modes["stamp"] = "cfdi40102"

    with pytest.raises(PacError) as exc:
        sw.stamp(sealed_xml)

    assert exc.value.code == "CFDI40102" and exc.value.permanent
    assert "digestión" in exc.value.message


def test_dot_separated_sat_code_is_parsed(sw, sw_server, sealed_xml):
    sw_server.modes["stamp"] = "301"

    with pytest.raises(PacError) as exc:
        sw.stamp(sealed_xml)

    assert exc.value.code == "301" and exc.value.permanent and "mal formado" in exc.value.message


def test_bad_credentials_are_permanent(sw_server, sealed_xml):
    pac = sw_module.SwPac(username=SW_USER, password="wrong", base_url=sw_server.url)

    with pytest.raises(PacError) as exc:
        pac.stamp(sealed_xml)

    assert exc.value.code == "AU2000" and exc.value.permanent
    assert sw_server.calls("stamp") == []


def test_expired_token_is_renewed_once(sw, sw_server, sealed_xml, seal):
    sw.stamp(sealed_xml)
    sw_server.expire_tokens()

    result = sw.stamp(seal(total=__import__("decimal").Decimal("58.00")))

    assert result.uuid
    assert sw_server.auth_count == 2


def test_token_infinito_is_used_without_authenticating(sw_server, sealed_xml):
    sw_server.tokens.add("infinite-token")
    pac = sw_module.SwPac(username="", password="infinite-token", base_url=sw_server.url)

    assert pac.stamp(sealed_xml).uuid
    assert sw_server.auth_count == 0


def test_invalid_token_infinito_is_permanent(sw_server, sealed_xml):
    pac = sw_module.SwPac(username="", password="not-a-token", base_url=sw_server.url)

    with pytest.raises(PacError) as exc:
        pac.stamp(sealed_xml)

    assert exc.value.code == "401" and exc.value.permanent


@pytest.mark.parametrize("mode", ["http500", "malformed"])
def test_server_errors_and_garbage_are_transient(sw, sw_server, sealed_xml, mode):
    sw_server.modes["stamp"] = mode

    with pytest.raises(PacError) as exc:
        sw.stamp(sealed_xml)

    assert not exc.value.permanent
    assert exc.value.code in ("http_500", "malformed")


def test_timeout_is_transient_and_retry_keeps_one_uuid(sw, sw_server, sealed_xml, short_timeout):
    sw.token()  # authenticate before the stamp call times out
    sw_server.modes["stamp"] = "timeout"

    with pytest.raises(PacError) as exc:
        sw.stamp(sealed_xml)

    assert exc.value.code == "timeout" and not exc.value.permanent
    sw_server.modes.clear()
    assert sw.stamp(sealed_xml).uuid == sw.stamp(sealed_xml).uuid
    assert len(sw_server.stamps) == 1


def test_authentication_timeout_is_transient(sw, sw_server, sealed_xml, short_timeout):
    sw_server.modes["auth"] = "timeout"

    with pytest.raises(PacError) as exc:
        sw.stamp(sealed_xml)

    assert exc.value.code == "timeout" and not exc.value.permanent


# --- cancellation, status, ping ------------------------------------------------------------------------


def test_cancel_sends_the_csd_and_reports_in_process(sw, sw_server, emisor_csd):
    result = sw.cancel(uuid=UUID, motivo="02", certificate=emisor_csd)

    assert result.status == IN_PROCESS and result.code == "201"
    assert b"<Acuse" in result.acuse
    body = json.loads(sw_server.calls("cancel")[0]["body"])
    assert body["rfc"] == "EKU9003173C9" and body["motivo"] == "02" and body["foliosustitucion"] == ""
    assert base64.b64decode(body["b64Cer"]) == emisor_csd.info.der


def test_cancel_per_uuid_refusal_is_rejected(sw, sw_server, emisor_csd):
    sw_server.modes["cancel"] = "203"

    result = sw.cancel(uuid=UUID, motivo="02", certificate=emisor_csd)

    assert result.status == REJECTED and "emisor" in result.message


def test_cancel_205_is_transient(sw, sw_server, emisor_csd):
    sw_server.modes["cancel"] = "205"

    with pytest.raises(PacError) as exc:
        sw.cancel(uuid=UUID, motivo="02", certificate=emisor_csd)

    assert exc.value.code == "205" and not exc.value.permanent


def test_cancel_bad_motivo_never_reaches_the_provider(sw, sw_server, emisor_csd):
    with pytest.raises(PacError) as exc:
        sw.cancel(uuid=UUID, motivo="05", certificate=emisor_csd)

    assert exc.value.code == "207" and exc.value.permanent
    assert sw_server.requests == []


def test_status_goes_to_sat_consulta(sw, sat_server):
    sat_server.documents[UUID] = {"re": "EKU9003173C9", "rr": "XIQB891116QE4", "estado": "Cancelado",
                                  "estatus_cancelacion": "Cancelado sin aceptación"}

    status = sw.status(uuid=UUID.lower(), emisor_rfc="EKU9003173C9", receptor_rfc="XIQB891116QE4", total="1160.00")

    assert status.estado == "Cancelado" and status.estatus_cancelacion == "Cancelado sin aceptación"
    assert sat_server.requests[0]["params"] == {"re": "EKU9003173C9", "rr": "XIQB891116QE4", "tt": "1160.0",
                                                "id": UUID}


def test_ping_reports_the_balance(sw):
    assert "Timbres disponibles: 42" in sw.ping()


def test_ping_with_bad_credentials_is_a_readable_error(sw_server):
    pac = sw_module.SwPac(username=SW_USER, password="wrong", base_url=sw_server.url, api_url=sw_server.url)

    with pytest.raises(PacError) as exc:
        pac.ping()

    assert exc.value.permanent and "credenciales" in exc.value.message
