"""What each adapter says a failed stamp request left at the PAC (PacError.outcome), for every failure shape of the
fakes: the input of the failover decision table. And the fakes' shapes themselves (down/up, drop, late, latency)."""

import time
from decimal import Decimal

import pytest
import requests
import urllib3.exceptions

from invoicing.pac.base import (
    HELD,
    INVALID,
    NOT_SENT,
    REFUSED,
    UNKNOWN,
    PacError,
    never_connected,
    transport_error,
)
from invoicing.pac.finkok import FinkokPac


def outcome_of(pac, xml):
    with pytest.raises(PacError) as exc:
        pac.stamp(xml)
    return exc.value


@pytest.mark.parametrize(("mode", "outcome", "code"), [
    ("http503", NOT_SENT, "http_503"),
    ("300", REFUSED, "300"),
    ("708", REFUSED, "708"),
    ("718", REFUSED, "718"),
    ("timeout", UNKNOWN, "timeout"),
    ("http500", UNKNOWN, "http_500"),
    ("malformed", UNKNOWN, "malformed"),
    ("cfdi40102", INVALID, "CFDI40102"),
    ("401", INVALID, "401"),
])
def test_finkok_outcomes(finkok, finkok_server, sealed_xml, short_timeout, mode, outcome, code):
    finkok_server.sleep_seconds = 0.6
    finkok_server.modes["stamp"] = mode
    error = outcome_of(finkok, sealed_xml)
    assert (error.outcome, error.code) == (outcome, code)


def test_finkok_down_is_not_sent_and_up_again_stamps(finkok, finkok_server, sealed_xml):
    finkok_server.down()
    error = outcome_of(finkok, sealed_xml)
    assert (error.outcome, error.code) == (NOT_SENT, "connection")
    finkok_server.up()
    assert finkok.stamp(sealed_xml).uuid


def test_finkok_drop_after_stamping_is_unknown_and_the_resend_gets_the_same_stamp(finkok, finkok_server, sealed_xml):
    finkok_server.faults["stamp"] = ("drop", 1.0)
    finkok_server.resend_modes["stamp"] = "ok"

    error = outcome_of(finkok, sealed_xml)
    again = finkok.stamp(sealed_xml)

    assert (error.outcome, error.code) == (UNKNOWN, "connection_lost")
    assert again.already_stamped and finkok_server.issued() == {again.uuid}


def test_finkok_slow_answer_is_unknown_and_the_stamp_is_kept(finkok, finkok_server, sealed_xml, short_timeout):
    finkok_server.latency["stamp"] = 0.6

    error = outcome_of(finkok, sealed_xml)
    finkok_server.latency.clear()

    assert (error.outcome, error.code) == (UNKNOWN, "timeout")
    assert finkok.stamp(sealed_xml).already_stamped and len(finkok_server.issued()) == 1


def test_finkok_late_stamp_appears_after_the_client_gave_up(finkok, finkok_server, sealed_xml, short_timeout):
    finkok_server.sleep_seconds = 0.6
    finkok_server.modes["stamp"] = "late"

    assert outcome_of(finkok, sealed_xml).outcome == UNKNOWN
    assert finkok.find_stamp(sealed_xml) is None  # not yet: Finkok answers 603, and ``stamped`` made none
    time.sleep(0.5)
    found = finkok.find_stamp(sealed_xml)
    assert found is not None and finkok_server.issued() == {found.uuid}


def test_finkok_307_without_the_stamp_is_held(finkok, finkok_server, sealed_xml):
    finkok.stamp(sealed_xml)
    finkok_server.modes.update({"stamp": "307_empty", "stamped": "603"})
    assert outcome_of(finkok, sealed_xml).outcome == HELD


@pytest.mark.parametrize(("operation", "mode", "outcome"), [
    ("auth", "timeout", NOT_SENT),  # only the token request failed: the document was never sent
    ("auth", "http500", NOT_SENT),
    ("auth", "bad_credentials", NOT_SENT),
    ("stamp", "http503", NOT_SENT),
    ("stamp", "timeout", UNKNOWN),
    ("stamp", "http500", UNKNOWN),
    ("stamp", "malformed", UNKNOWN),
    ("stamp", "cfdi40102", INVALID),
])
def test_sw_outcomes(sw, sw_server, sealed_xml, short_timeout, operation, mode, outcome):
    sw_server.sleep_seconds = 0.6
    sw_server.modes[operation] = mode
    assert outcome_of(sw, sealed_xml).outcome == outcome


def test_sw_drop_then_307_with_the_stamp(sw, sw_server, sealed_xml):
    sw_server.faults["stamp"] = ("drop", 1.0)
    sw_server.resend_modes["stamp"] = "ok"

    assert outcome_of(sw, sealed_xml).outcome == UNKNOWN
    again = sw.stamp(sealed_xml)
    assert again.already_stamped and sw_server.issued() == {again.uuid}
    with pytest.raises(NotImplementedError):  # SW cannot be asked without stamping
        sw.find_stamp(sealed_xml)


def test_sw_307_without_the_stamp_is_held(sw, sw_server, sealed_xml):
    sw.stamp(sealed_xml)
    sw_server.modes["stamp"] = "307_empty"
    assert outcome_of(sw, sealed_xml).outcome == HELD


def test_a_fault_rate_hits_about_that_share(finkok, finkok_server, seal):
    finkok_server.faults["stamp"] = ("http503", 0.3)
    outcomes = []
    for i in range(60):
        try:
            finkok.stamp(seal(total=Decimal("116.00") + i))
            outcomes.append("ok")
        except PacError as exc:
            outcomes.append(exc.outcome)
    assert 8 <= outcomes.count(NOT_SENT) <= 30 and outcomes.count("ok") + outcomes.count(NOT_SENT) == 60


def test_never_connected_sees_through_requests_and_urllib3():
    refused = requests.ConnectionError(urllib3.exceptions.MaxRetryError(
        None, "/", urllib3.exceptions.NewConnectionError(None, "Connection refused")))
    dns = requests.ConnectionError(urllib3.exceptions.MaxRetryError(
        None, "/", urllib3.exceptions.NameResolutionError("pac.example", None, OSError("Name or service not known"))))
    reset = requests.ConnectionError(urllib3.exceptions.ProtocolError(
        "Connection aborted.", ConnectionResetError(104, "reset")))
    assert never_connected(refused) and never_connected(dns) and never_connected(requests.ConnectTimeout())
    assert not never_connected(reset) and not never_connected(requests.ReadTimeout())
    assert transport_error("Finkok", dns).outcome == NOT_SENT
    assert transport_error("Finkok", reset).outcome == UNKNOWN
    assert transport_error("SW", reset, sent=False).outcome == NOT_SENT


def test_an_unknown_provider_is_not_sent(merchant):
    from invoicing.pac import get_pac

    merchant.pac = "acme"
    with pytest.raises(PacError) as exc:
        get_pac(merchant)
    assert exc.value.outcome == NOT_SENT


def test_connection_refused_on_a_closed_port_is_not_sent(sealed_xml):
    pac = FinkokPac(username="u", password="p", base_url="http://127.0.0.1:9")
    assert outcome_of(pac, sealed_xml).outcome == NOT_SENT
