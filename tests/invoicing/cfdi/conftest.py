from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest
from lxml import etree

from invoicing.cfdi.csd import load_csd
from invoicing.cfdi.inputs import IVA_16, Emisor, Receptor, Ticket, TicketLine
from invoicing.cfdi.resources import load_schema, load_xslt

SHARED_SAT = Path(__file__).resolve().parents[3] / ".." / "shared" / "sat"
OFFICIAL = SHARED_SAT / "xml" / "www.sat.gob.mx" / "sitio_internet"
CSD_DIR = SHARED_SAT / "csd"
PASSWORD = "12345678a"


@pytest.fixture(scope="session")
def official_schema():
    """The official XSD from ../shared/sat (not satcfdi's copy), CFDI 4.0 + TFD 1.1."""
    return load_schema(OFFICIAL)


@pytest.fixture(scope="session")
def official_cadena():
    xslt = load_xslt(OFFICIAL / "cfd" / "4" / "cadenaoriginal_4_0" / "cadenaoriginal_4_0.xslt")
    return lambda root: str(xslt(etree.ElementTree(root)))


@pytest.fixture(scope="session")
def eku_files():
    base = CSD_DIR / "EKU9003173C9"
    return (base / "EKU9003173C9_csd_2023.cer").read_bytes(), (base / "EKU9003173C9_csd_2023.key").read_bytes()


@pytest.fixture(scope="session")
def csd(eku_files):
    return load_csd(*eku_files, PASSWORD)


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
