"""SAT's ConsultaCFDIService client against a fake that answers like the captured responses (PROTOCOLS.md §3)."""

import pytest

from invoicing.pac import sat_status
from invoicing.pac.base import PacError

UUID = "6114CFD0-1A2B-4C3D-9E8F-0123456789AB"


def consulta(sat_server, **kwargs):
    args = {"uuid": UUID, "emisor_rfc": "EKU9003173C9", "receptor_rfc": "XAXX010101000", "total": "1160.00"}
    return sat_status.consulta(url=f"{sat_server.url}/ConsultaCFDIService.svc", **{**args, **kwargs})


def test_vigente_document(sat_server):
    sat_server.documents[UUID] = {"re": "EKU9003173C9", "rr": "XAXX010101000"}

    status = consulta(sat_server)

    assert status.estado == "Vigente"
    assert status.es_cancelable == "Cancelable con aceptación"
    assert status.estatus_cancelacion == ""
    assert status.codigo_estatus == "S - Comprobante obtenido satisfactoriamente."
    assert status.validacion_efos == "200"


def test_unknown_document_is_no_encontrado(sat_server):
    status = consulta(sat_server)

    assert status.estado == "No Encontrado" and "602" in status.codigo_estatus


def test_expression_is_escaped_and_total_trimmed(sat_server):
    consulta(sat_server, emisor_rfc="A&B010101AB1", total="100")

    assert b"A&amp;amp;B010101AB1&amp;rr=" in sat_server.requests[0]["body"]
    assert sat_server.requests[0]["params"]["tt"] == "100.0"
    assert sat_server.requests[0]["params"]["re"] == "A&B010101AB1"


@pytest.mark.parametrize(("mode", "code"), [("http500", "http_503"), ("malformed", "malformed")])
def test_service_trouble_is_transient(sat_server, mode, code):
    sat_server.modes["consulta"] = mode

    with pytest.raises(PacError) as exc:
        consulta(sat_server)

    assert exc.value.code == code and not exc.value.permanent


def test_timeout_is_transient(sat_server, short_timeout):
    sat_server.modes["consulta"] = "timeout"

    with pytest.raises(PacError) as exc:
        consulta(sat_server)

    assert exc.value.code == "timeout" and not exc.value.permanent
