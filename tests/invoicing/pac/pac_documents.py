"""Documents for the PAC tests (a module of its own: ``from conftest import`` picks whichever conftest was
imported first when several test folders run together)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from invoicing.cfdi.builder import build_ingreso
from invoicing.cfdi.inputs import IVA_16, Emisor, Receptor, Ticket, TicketLine


def make_comprobante(*, issued_at=None, total=D("116.00"), receptor=None, emisor=None):
    receptor = receptor or Receptor("XIQB891116QE4", "BERENICE XIMO QUEZADA", "26015", "612", "G03")
    ticket = Ticket("T-1001", (TicketLine("Cuaderno profesional", D("1"), total, "14111514", "H87", taxes=(IVA_16,)),),
                    payment_form="04", total=total)
    return build_ingreso([ticket], emisor=emisor or Emisor("EKU9003173C9", "ESCUELA KEMPER URGATE", "601"),
                         receptor=receptor, issued_at=issued_at or datetime.now(UTC) - timedelta(minutes=5),
                         lugar_expedicion="06600", serie="F", folio="1")
