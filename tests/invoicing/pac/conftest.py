"""Fixtures for the PAC tests: fake provider servers on 127.0.0.1 and freshly sealed documents."""

from datetime import UTC, datetime, timedelta

import pytest
from fakes import FINKOK_PASSWORD, FINKOK_USER, SW_PASSWORD, SW_USER, FinkokFake, SatFake, SwFake
from pac_documents import make_comprobante

from invoicing.cfdi.csd import load_csd
from invoicing.cfdi.seal import seal_document
from invoicing.cfdi.testcsd import generate_test_csd
from invoicing.cfdi.xml import to_bytes


@pytest.fixture(scope="session")
def _finkok_server():
    server = FinkokFake().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _sw_server():
    server = SwFake().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _sat_server():
    server = SatFake().start()
    yield server
    server.stop()


@pytest.fixture
def finkok_server(_finkok_server):
    _finkok_server.reset()
    return _finkok_server


@pytest.fixture
def sw_server(_sw_server):
    _sw_server.reset()
    return _sw_server


@pytest.fixture
def sat_server(_sat_server):
    _sat_server.reset()
    return _sat_server


@pytest.fixture
def short_timeout(settings):
    """The fakes sleep 2 s in "timeout" mode; the client gives up after 0.3 s."""
    settings.PAC_TIMEOUT_SECONDS = 0.3
    return 0.3


@pytest.fixture
def finkok(finkok_server):
    from invoicing.pac.finkok import FinkokPac

    return FinkokPac(username=FINKOK_USER, password=FINKOK_PASSWORD, base_url=finkok_server.url,
                     retry_307_delay=0.01)


@pytest.fixture
def sw(sw_server, sat_server):
    from invoicing.pac import sw as sw_module

    sw_module._tokens.clear()
    return sw_module.SwPac(username=SW_USER, password=SW_PASSWORD, base_url=sw_server.url, api_url=sw_server.url,
                           sat_status_url=f"{sat_server.url}/ConsultaCFDIService.svc")


@pytest.fixture(scope="session")
def emisor_csd():
    cer, key, password = generate_test_csd("EKU9003173C9", "ESCUELA KEMPER URGATE",
                                           valid_from=datetime.now(UTC) - timedelta(days=30))
    return load_csd(cer, key, password)


@pytest.fixture
def seal(emisor_csd):
    """seal(comprobante=None, csd=None) -> sealed XML bytes, as the stamping pipeline persists them."""

    def _seal(comprobante=None, csd=None, **kwargs):
        return to_bytes(seal_document(comprobante or make_comprobante(**kwargs), csd or emisor_csd))

    return _seal


@pytest.fixture
def sealed_xml(seal):
    return seal()
