"""The sandbox PAC: faithful checks (same codes as the engine), verifiable stamps, one UUID per sealed XML."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from cryptography.hazmat.primitives.serialization import load_der_private_key
from django.core.management import call_command
from django.db import connection, connections
from pac_documents import make_comprobante

from invoicing.cfdi.csd import Csd, read_certificate
from invoicing.cfdi.errors import errors_only
from invoicing.cfdi.inputs import Receptor
from invoicing.cfdi.testcsd import generate_test_csd
from invoicing.cfdi.validation import validate
from invoicing.cfdi.verify import verify
from invoicing.pac import get_pac
from invoicing.pac.base import CANCELLED, IN_PROCESS, REJECTED, PacError
from invoicing.pac.models import SandboxCertificate, SandboxStamp
from invoicing.pac.sandbox import LEYENDA, SandboxPac

pytestmark = pytest.mark.django_db


@pytest.fixture
def pac():
    return SandboxPac()


def test_sandbox_is_the_default_pac(merchant):
    assert isinstance(get_pac(merchant), SandboxPac)


def test_stamp_verifies_with_the_sandbox_certificate(pac, sealed_xml, tmp_path, capsys):
    result = pac.stamp(sealed_xml)

    cer = tmp_path / "sandbox.cer"
    call_command("sandbox_pac_certificate", "--out", str(cer))
    check = verify(result.stamped_xml, cer.read_bytes())
    assert check.ok, check.summary()
    assert any(c.name == "sello_sat" and c.message == "SelloSAT válido" for c in check.checks)
    assert check.uuid == result.uuid == result.uuid.upper()
    assert result.sat_certificate_number == SandboxCertificate.objects.get().number
    assert LEYENDA.encode() in result.stamped_xml
    assert result.stamped_at.tzinfo is not None and not result.already_stamped
    # The command users run, end to end.
    xml_file = tmp_path / "stamped.xml"
    xml_file.write_bytes(result.stamped_xml)
    capsys.readouterr()
    call_command("cfdi_verify", str(xml_file), "--sat-cert", str(cer))
    assert "OK" in capsys.readouterr().out


def test_the_same_sealed_xml_stamped_twice_gives_one_uuid(pac, sealed_xml):
    first = pac.stamp(sealed_xml)
    again = SandboxPac().stamp(sealed_xml)  # another worker, same database

    assert again.uuid == first.uuid and again.already_stamped
    assert again.stamped_xml == first.stamped_xml
    assert SandboxStamp.objects.count() == 1


def test_injected_failure_is_transient_and_retry_keeps_the_uuid(pac, sealed_xml, settings, monkeypatch):
    settings.SANDBOX_PAC_FAILURE_RATE = 1.0
    # First failure "after": the stamp is stored but the answer is lost, like a timeout.
    draws = iter([0.9, 0.1])
    monkeypatch.setattr("invoicing.pac.sandbox.random.random", lambda: next(draws))
    with pytest.raises(PacError) as exc:
        pac.stamp(sealed_xml)
    assert exc.value.permanent is False
    settings.SANDBOX_PAC_FAILURE_RATE = 0

    result = pac.stamp(sealed_xml)

    assert result.already_stamped
    assert SandboxStamp.objects.get().uuid == result.uuid


def test_latency_is_injected(pac, sealed_xml, settings):
    import time

    settings.SANDBOX_PAC_LATENCY_MS = 50
    started = time.monotonic()
    pac.stamp(sealed_xml)
    assert time.monotonic() - started >= 0.05


# --- the engine's invalid documents get the engine's codes ---------------------------------------------


def _expected_code(comprobante, csd):
    errors = errors_only(validate(comprobante, now=datetime.now(UTC), csd=csd))
    return errors[0].code if errors else None


MUTATIONS = {
    "regimen receptor fuera de catálogo": lambda c: setattr(c.receptor, "regimen_fiscal", "999"),
    "uso CFDI fuera de catálogo": lambda c: setattr(c.receptor, "uso_cfdi", "ZZZ"),
    "uso CFDI no válido para el régimen": lambda c: setattr(c.receptor, "uso_cfdi", "CP01"),
    "total que no cuadra": lambda c: setattr(c, "total", c.total + D("1.00")),
    "fecha con formato inválido": lambda c: setattr(c, "fecha", c.fecha.replace("T", " ")),
}


@pytest.mark.parametrize("mutation", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_business_rule_errors_carry_the_engine_codes(pac, seal, emisor_csd, mutation):
    comprobante = make_comprobante(receptor=Receptor("XIQB891116QE4", "BERENICE XIMO QUEZADA", "26015", "612", "G03"))
    mutation(comprobante)
    sealed = seal(comprobante)
    expected = _expected_code(comprobante, emisor_csd)
    assert expected, "the mutation must make the document invalid for the engine"

    with pytest.raises(PacError) as exc:
        pac.stamp(sealed)

    assert exc.value.code == expected
    assert exc.value.permanent is True
    assert exc.value.message  # Spanish, from the engine
    assert not SandboxStamp.objects.exists()


def test_fecha_older_than_72_hours_is_401(pac, seal, emisor_csd):
    comprobante = make_comprobante(issued_at=datetime.now(UTC) - timedelta(hours=73))
    sealed = seal(comprobante)

    with pytest.raises(PacError) as exc:
        pac.stamp(sealed)

    assert exc.value.code == _expected_code(comprobante, emisor_csd) == "401"


def test_fecha_in_the_future_is_401(pac, seal, emisor_csd):
    comprobante = make_comprobante(issued_at=datetime.now(UTC) + timedelta(hours=2))

    with pytest.raises(PacError) as exc:
        pac.stamp(seal(comprobante))

    assert exc.value.code == _expected_code(comprobante, emisor_csd) == "401"


def test_tampered_document_is_cfdi40102(pac, sealed_xml):
    tampered = sealed_xml.replace(b'Total="116.00"', b'Total="16.00"')
    assert tampered != sealed_xml
    assert not verify(tampered).ok  # the engine's verify agrees the sello is broken

    with pytest.raises(PacError) as exc:
        pac.stamp(tampered)

    assert exc.value.code == "CFDI40102" and exc.value.permanent
    assert "sello" in exc.value.message


def test_emisor_rfc_different_from_the_certificate_is_cfdi40139(pac, seal):
    from invoicing.cfdi.csd import load_csd

    other = load_csd(*generate_test_csd("CACX7605101P8", "XOCHILT CASAS CHAVEZ"))
    comprobante = make_comprobante()

    with pytest.raises(PacError) as exc:
        pac.stamp(seal(comprobante, csd=other))

    assert exc.value.code == _expected_code(comprobante, other) == "CFDI40139"


def test_certificate_expired_at_fecha_is_rejected_like_the_engine(pac, seal):
    now = datetime.now(UTC)
    cer, key, password = generate_test_csd("EKU9003173C9", "ESCUELA KEMPER URGATE", valid_from=now - timedelta(days=400),
                                           valid_to=now - timedelta(days=2))
    expired = Csd(read_certificate(cer), load_der_private_key(key, password.encode()))
    comprobante = make_comprobante()

    with pytest.raises(PacError) as exc:
        pac.stamp(seal(comprobante, csd=expired))

    assert exc.value.code == _expected_code(comprobante, expired) == "305"


def test_fiel_instead_of_csd_is_306(pac, seal):
    cer, key, password = generate_test_csd("EKU9003173C9", "ESCUELA KEMPER URGATE", fiel=True)
    fiel = Csd(read_certificate(cer), load_der_private_key(key, password.encode()))

    with pytest.raises(PacError) as exc:
        pac.stamp(seal(csd=fiel))

    assert exc.value.code == "306" and "e.firma" in exc.value.message


def test_malformed_xml_is_301_and_a_stamped_xml_is_707(pac, sealed_xml):
    with pytest.raises(PacError) as exc:
        pac.stamp(b"<cfdi:Comprobante")
    assert exc.value.code == "301" and exc.value.permanent

    stamped = pac.stamp(sealed_xml).stamped_xml
    with pytest.raises(PacError) as exc:
        pac.stamp(stamped)
    assert exc.value.code == "707"


# --- status and cancellation -----------------------------------------------------------------------


def _status(pac, result, total="116.00", receptor="XIQB891116QE4"):
    return pac.status(uuid=result.uuid, emisor_rfc="EKU9003173C9", receptor_rfc=receptor, total=total)


def test_status_of_stamped_and_unknown_documents(pac, sealed_xml):
    result = pac.stamp(sealed_xml)

    status = _status(pac, result)
    assert (status.estado, status.estatus_cancelacion) == ("Vigente", "")
    assert status.codigo_estatus.startswith("S - ") and status.es_cancelable == "Cancelable sin aceptación"
    assert _status(pac, result, total="117.00").codigo_estatus.startswith("N - 601")
    assert _status(pac, result, receptor="XAXX010101000").estado == "No Encontrado"


def test_cancel_without_acceptance_is_immediate(pac, sealed_xml, emisor_csd):
    result = pac.stamp(sealed_xml)

    cancel = pac.cancel(uuid=result.uuid, motivo="02", certificate=emisor_csd)

    assert cancel.status == CANCELLED and cancel.code == "201" and b"<Acuse" in cancel.acuse
    status = _status(pac, result)
    assert (status.estado, status.estatus_cancelacion) == ("Cancelado", "Cancelado sin aceptación")
    assert pac.cancel(uuid=result.uuid, motivo="02", certificate=emisor_csd).code == "202"


def test_cancel_needing_acceptance_is_in_process_then_accepted(pac, seal, emisor_csd, settings):
    result = pac.stamp(seal(total=D("5800.00")))
    # Past the business day after issuance and above $1,000: the receptor must accept.
    SandboxStamp.objects.update(stamped_at=datetime.now(UTC) - timedelta(days=5))
    settings.SANDBOX_PAC_CANCEL_ACCEPT_SECONDS = 3600

    cancel = pac.cancel(uuid=result.uuid, motivo="02", certificate=emisor_csd)

    assert cancel.status == IN_PROCESS
    status = _status(pac, result, total="5800.00")
    assert (status.estado, status.estatus_cancelacion) == ("Vigente", "En proceso")
    assert status.es_cancelable == "Cancelable con aceptación"
    settings.SANDBOX_PAC_CANCEL_ACCEPT_SECONDS = 0
    status = _status(pac, result, total="5800.00")
    assert (status.estado, status.estatus_cancelacion) == ("Cancelado", "Cancelado con aceptación")


def test_cancel_checks_emisor_motivo_and_existence(pac, sealed_xml, emisor_csd):
    from invoicing.cfdi.csd import load_csd

    result = pac.stamp(sealed_xml)
    other = load_csd(*generate_test_csd("CACX7605101P8", "XOCHILT CASAS CHAVEZ"))

    assert pac.cancel(uuid=result.uuid, motivo="02", certificate=other).status == REJECTED
    with pytest.raises(PacError) as exc:
        pac.cancel(uuid=result.uuid, motivo="01", certificate=emisor_csd)
    assert exc.value.code == "208"
    with pytest.raises(PacError) as exc:
        pac.cancel(uuid="11111111-2222-3333-4444-555555555555", motivo="02", certificate=emisor_csd)
    assert exc.value.code == "205"


def test_ping_names_the_sandbox_certificate(pac):
    assert "sin validez fiscal" in pac.ping()


# --- concurrency (PostgreSQL) ----------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_stamps_of_the_same_xml_give_one_uuid(sealed_xml):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    SandboxPac().ping()  # create the certificate once
    barrier = threading.Barrier(6)
    results, errors = [], []

    def worker():
        try:
            barrier.wait()
            results.append(SandboxPac().stamp(sealed_xml).uuid)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not errors
    assert len(set(results)) == 1 and len(results) == 6
    assert SandboxStamp.objects.count() == 1


# --- batches (what the stamping queue sends) ----------------------------------------------------------------


def test_a_batch_answers_each_document_and_a_bad_one_alone(pac, seal):
    good = [seal(total=D("116.00")), seal(total=D("232.00"))]
    tampered = good[0].replace(b'Total="116.00"', b'Total="117.00"')
    outcomes = pac.stamp_many([good[0], tampered, good[1]])
    assert isinstance(outcomes[1], PacError) and outcomes[1].permanent
    assert outcomes[0].uuid != outcomes[2].uuid
    assert not outcomes[0].already_stamped and not outcomes[2].already_stamped
    assert SandboxStamp.objects.count() == 2


def test_the_same_xml_twice_in_one_batch_and_again_later_keeps_one_uuid(pac, sealed_xml):
    first, twin = pac.stamp_many([sealed_xml, sealed_xml])
    assert first.uuid == twin.uuid
    [later] = pac.stamp_many([sealed_xml])
    assert later.uuid == first.uuid and later.already_stamped
    assert SandboxStamp.objects.count() == 1


def test_a_batch_that_loses_a_race_answers_with_the_winners_uuid(pac, sealed_xml, monkeypatch):
    """Another worker stores the same XML between our look-up and our INSERT: its UUID is the only one."""
    winner = SandboxPac().stamp(sealed_xml)
    real_filter = SandboxStamp.objects.filter
    calls = []

    def blind_first_lookup(*args, **kwargs):
        calls.append(kwargs)
        if len(calls) == 1:  # the look-up for earlier stamps sees nothing, as if it ran a moment earlier
            return SandboxStamp.objects.none()
        return real_filter(*args, **kwargs)

    monkeypatch.setattr(SandboxStamp.objects, "filter", blind_first_lookup)
    [outcome] = pac.stamp_many([sealed_xml])
    assert outcome.uuid == winner.uuid and outcome.already_stamped
    assert SandboxStamp.objects.count() == 1
