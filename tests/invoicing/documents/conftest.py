"""Stamped invoices for the documents tests: sealed by the CFDI engine, with a TFD added here.

The TFD imitates a PAC's (TimbreFiscalDigital 1.1 with Leyenda, SelloSAT signed over the TFD cadena); it is
signed with a self-signed test certificate, which is all the PDF, the email and the downloads need.
"""

import datetime as dt
import os
import uuid as uuid_lib
import zoneinfo
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from lxml import etree

from invoicing.cfdi.builder import build_ingreso
from invoicing.cfdi.cadena import tfd_cadena_original
from invoicing.cfdi.csd import load_csd
from invoicing.cfdi.inputs import IVA_16, Emisor, Receptor, Ticket, TicketLine
from invoicing.cfdi.parser import parse_cfdi
from invoicing.cfdi.resources import CFDI_NS, TFD_NS
from invoicing.cfdi.seal import seal_document
from invoicing.cfdi.testcsd import generate_test_csd
from invoicing.cfdi.xml import to_bytes
from invoicing.models import Invoice
from tickets.models import MerchantMembership

XSI = "http://www.w3.org/2001/XMLSchema-instance"
SAT_CERT_NUMBER = "30001000000500003456"
ZONA_CENTRO = zoneinfo.ZoneInfo("America/Mexico_City")
PRODUCTS = [
    ("14111514", "Cuaderno profesional de raya, 100 hojas", "45.50"),
    ("44121701", "Bolígrafo tinta azul punto mediano", "12.90"),
    ("50202306", "Refresco de cola 600 ml", "18.00"),
    ("43211708", "Mouse óptico inalámbrico con receptor USB nano y batería AA incluida", "349.00"),
    ("50181900", "Pan dulce surtido (concha, cuernito y oreja) por pieza", "9.50"),
]


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = Path(os.environ.get("ARTIFACTS_DIR", "artifacts")) / "pdf"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _csd(rfc: str, name: str, serial: str):
    cer, key, password = generate_test_csd(rfc, name, serial_digits=serial)
    return load_csd(cer, key, password)


def add_tfd(sealed: etree._Element, *, uuid: str, stamped_at: dt.datetime, signer) -> bytes:
    """Complemento/TimbreFiscalDigital 1.1, as a PAC would add it."""
    tfd = etree.Element(f"{{{TFD_NS}}}TimbreFiscalDigital", nsmap={"tfd": TFD_NS, "xsi": XSI})
    tfd.set(f"{{{XSI}}}schemaLocation", "http://www.sat.gob.mx/TimbreFiscalDigital "
            "http://www.sat.gob.mx/sitio_internet/cfd/TimbreFiscalDigital/TimbreFiscalDigitalv11.xsd")
    for name, value in (
        ("Version", "1.1"),
        ("UUID", uuid),
        ("FechaTimbrado", stamped_at.astimezone(ZONA_CENTRO).strftime("%Y-%m-%dT%H:%M:%S")),
        ("RfcProvCertif", "SPR190613I52"),
        ("Leyenda", "Timbre de pruebas"),
        ("SelloCFD", sealed.get("Sello")),
        ("NoCertificadoSAT", SAT_CERT_NUMBER),
    ):
        tfd.set(name, value)
    tfd.set("SelloSAT", signer.sign(tfd_cadena_original(tfd).encode("utf-8")))
    complemento = etree.SubElement(sealed, f"{{{CFDI_NS}}}Complemento")
    complemento.append(tfd)
    return to_bytes(sealed)


# SAT's names for the keys above (c_ClaveProdServ, c_ClaveUnidad as satcfdi ships them). 43211708 is left
# out on purpose: a key the loaded catalog lacks is printed alone.
SAT_KEY_NAMES = {
    "14111514": "Blocs o cuadernos de papel",
    "44121701": "Bolígrafos",
    "50202306": "Refrescos",
    "50181900": "Pan, galletas y pastelitos dulces",
    "50192100": "Botanas",
    "01010101": "No existe en el catálogo",
}
SAT_UNIT_NAMES = {"H87": "Pieza", "LTR": "Litro", "KGM": "Kilogramo", "E48": "Unidad de servicio"}


@pytest.fixture
def sat_keys(db):
    """The rows of c_ClaveProdServ and c_ClaveUnidad the documents tests use, as load_sat_catalogs loads them."""
    from tickets.catalogs import ProductKey, UnitKey

    ProductKey.objects.bulk_create(ProductKey(code=k, description=v) for k, v in SAT_KEY_NAMES.items())
    UnitKey.objects.bulk_create(UnitKey(code=k, name=v) for k, v in SAT_UNIT_NAMES.items())


@pytest.fixture
def make_stamped_invoice():
    """make(branch, lines=1, pac="sandbox", emails=[...], folio=1) → a stamped Invoice row. ``lines`` is a count
    (products cycled from PRODUCTS, IVA 16 %) or the TicketLines themselves."""
    counter = iter(range(1, 10_000))

    def make(branch, *, lines: int | tuple = 1, pac: str = "sandbox", emails=("cliente@example.com",), folio=None,
             receptor=None, moneda="MXN", tipo_cambio=None):
        merchant = branch.merchant
        folio = folio or next(counter)
        receptor = receptor or Receptor("XIQB891116QE4", "BERENICE XIMO QUEZADA", "26015", "612", "G03")
        ticket_lines = lines if isinstance(lines, tuple) else tuple(
            TicketLine(f"{PRODUCTS[i % len(PRODUCTS)][1]} #{i + 1}", Decimal(1 + i % 3),
                       Decimal(PRODUCTS[i % len(PRODUCTS)][2]), PRODUCTS[i % len(PRODUCTS)][0], "H87",
                       unidad="Pieza", sku=f"SKU-{i + 1:04d}", taxes=(IVA_16,))
            for i in range(lines)
        )
        issued_at = timezone.now() - dt.timedelta(minutes=5)
        c = build_ingreso(
            [Ticket(f"T-{folio}", ticket_lines, payment_form="04")],
            emisor=Emisor(merchant.rfc, merchant.legal_name, merchant.tax_regime),
            receptor=receptor, issued_at=issued_at, lugar_expedicion=branch.postal_code,
            serie=branch.invoice_serie, folio=str(folio), moneda=moneda, tipo_cambio=tipo_cambio,
        )
        csd = _csd(merchant.rfc, merchant.legal_name, "30001000000500003416")
        sealed = seal_document(c, csd)
        uuid = str(uuid_lib.uuid4()).upper()
        stamped_at = timezone.now()
        xml = add_tfd(sealed, uuid=uuid, stamped_at=stamped_at, signer=csd)
        parsed = parse_cfdi(xml).comprobante
        return Invoice.objects.create(
            merchant=merchant, branch=branch, status=Invoice.Status.STAMPED, serie=branch.invoice_serie,
            folio=folio, receptor_rfc=receptor.rfc, receptor_name=receptor.nombre,
            receptor_tax_regime=receptor.regimen_fiscal, receptor_postal_code=receptor.domicilio_fiscal,
            receptor_cfdi_use=receptor.uso_cfdi, receptor_emails=list(emails), payment_form="04",
            subtotal=parsed.subtotal, discount=parsed.descuento or 0,
            tax_total=parsed.impuestos.total_traslados, total=parsed.total, issued_at=issued_at,
            sealed_xml=to_bytes(sealed), stamped_xml=xml, uuid=uuid, stamped_at=stamped_at, pac=pac,
            currency=moneda, exchange_rate=tipo_cambio,
        )

    return make


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def staff_client(client, django_user_model):
    """client_for(merchant) → a test client logged in as staff of that merchant (view+change on invoices)."""
    from django.contrib.auth.models import Permission

    def client_for(merchant, username="staff"):
        user = django_user_model.objects.create_user(username=username, password="x", is_staff=True)
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label="invoicing",
                                                             codename__in=["view_invoice", "change_invoice"]))
        MerchantMembership.objects.create(user=user, merchant=merchant)
        client.force_login(user)
        return client

    return client_for
