from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from lxml import etree

from invoicing.cfdi.csd import load_csd
from invoicing.cfdi.inputs import IVA_16, Emisor, Receptor, Ticket, TicketLine
from invoicing.cfdi.resources import CADENA40_XSLT, load_schema, load_xslt, sat_root
from invoicing.cfdi.testcsd import generate_test_csd

# The generated twin of SAT's EKU9003173C9 2023 test CSD: same RFC, NoCertificado and validity, so the
# documents and rules tests read the same whether or not SAT's own files are beside the checkout.
EKU_NO_CERTIFICADO = "30001000000500003416"
EKU_VALID_FROM = datetime(2023, 5, 18, 11, 43, 51, tzinfo=UTC)
EKU_VALID_TO = datetime(2027, 5, 18, 11, 43, 51, tzinfo=UTC)


@pytest.fixture(scope="session")
def sat_schema():
    """SAT's CFDI 4.0 + TFD 1.1 XSD as satcfdi ships them (test_cfdi_official_files.py proves them SAT's)."""
    return load_schema(sat_root())


@pytest.fixture(scope="session")
def sat_cadena():
    """SAT's cadena original XSLT as satcfdi ships it, the reference ``fast_cadena`` is compared with."""
    xslt = load_xslt(sat_root() / CADENA40_XSLT)
    return lambda root: str(xslt(etree.ElementTree(root)))


@pytest.fixture(scope="session")
def official_sat_xml(shared_sat):
    """``sitio_internet`` of SAT's official XSD/XSLT in ../shared/sat (skipped when absent)."""
    return shared_sat / "xml" / "www.sat.gob.mx" / "sitio_internet"


@pytest.fixture(scope="session")
def eku_files():
    """(cer, key, password) of a generated CSD in SAT's format for EKU9003173C9."""
    return generate_test_csd("EKU9003173C9", "ESCUELA KEMPER URGATE SA DE CV", EKU_VALID_FROM, EKU_VALID_TO,
                             EKU_NO_CERTIFICADO)


@pytest.fixture(scope="session")
def csd(eku_files):
    return load_csd(*eku_files, at=datetime(2026, 11, 21, tzinfo=UTC))


@pytest.fixture
def emisor():
    return Emisor("EKU9003173C9", "ESCUELA KEMPER URGATE", "601")


@pytest.fixture
def receptor():
    return Receptor("XIQB891116QE4", "BERENICE XIMO QUEZADA", "26015", "612", "G03")


@pytest.fixture
def issued_at():
    return datetime(2026, 11, 21, 18, 30, 5, 123456, tzinfo=UTC)


@pytest.fixture
def ticket():
    return Ticket(
        "T-1001",
        (TicketLine("Cuaderno profesional", D("2"), D("45.50"), "14111514", "H87", taxes=(IVA_16,)),),
        payment_form="04",
        total=D("91.00"),
    )
