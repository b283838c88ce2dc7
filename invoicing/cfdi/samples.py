"""Random but realistic POS tickets, for `cfdi_sample` and for checking the engine against other tools."""

from __future__ import annotations

import random
from decimal import Decimal

from .inputs import IVA_0, IVA_8, IVA_16, IVA_EXENTO, Ticket, TicketLine, ieps_cuota, ieps_tasa

# (ClaveProdServ, ClaveUnidad, description, tax-inclusive unit price, taxes, sold by weight)
PRODUCTS = [
    ("50202306", "H87", "REFRESCO DE COLA 600 ML", "22.00", (ieps_cuota("1.6451"), IVA_16), False),
    ("50181900", "H87", "PAN BLANCO CAJA", "48.50", (IVA_0,), False),
    ("50131700", "H87", "LECHE ENTERA 1 L", "29.90", (IVA_0,), False),
    ("53131608", "H87", "JABÓN DE TOCADOR", "18.75", (IVA_16,), False),
    ("50192100", "H87", "BOTANA DE PAPAS 170 G", "45.00", (ieps_tasa("0.08"), IVA_16), False),
    ("50221101", "KGM", "FRIJOL NEGRO A GRANEL", "38.00", (IVA_0,), True),
    ("50301500", "KGM", "MANZANA ROJA", "54.90", (IVA_0,), True),
    ("14111514", "H87", "CUADERNO PROFESIONAL", "64.90", (IVA_16,), False),
    ("55101500", "H87", "LIBRO DE TEXTO", "189.00", (IVA_EXENTO,), False),
    ("50202203", "H87", "CERVEZA 355 ML", "24.50", (ieps_tasa("0.265"), IVA_16), False),
    ("10191509", "H87", "INSECTICIDA 400 ML", "89.00", (IVA_16,), False),
]
BORDER_PRODUCTS = [("53131608", "H87", "JABÓN DE TOCADOR", "17.50", (IVA_8,), False)]
PAYMENT_FORMS = ["01", "01", "03", "04", "28"]


def random_ticket(rng: random.Random, number: str, *, max_lines: int = 8, border: bool = False) -> Ticket:
    catalog = PRODUCTS + (BORDER_PRODUCTS if border else [])
    lines = []
    for code, unit, description, price, taxes, by_weight in rng.sample(catalog, rng.randint(1, min(max_lines, len(catalog)))):
        quantity = Decimal(rng.randint(250, 3000)) / 1000 if by_weight else Decimal(rng.choice([1, 1, 1, 2, 3, 6]))
        gross = (quantity * Decimal(price)).quantize(Decimal("0.01"))
        discount = (gross * Decimal(rng.choice([0, 0, 0, 5, 10])) / 100).quantize(Decimal("0.01"))
        lines.append(TicketLine(description=description, quantity=quantity, unit_price=Decimal(price),
                                clave_prod_serv=code, clave_unidad=unit, discount=discount, taxes=taxes))
    return Ticket(number=number, lines=tuple(lines), payment_form=rng.choice(PAYMENT_FORMS))
