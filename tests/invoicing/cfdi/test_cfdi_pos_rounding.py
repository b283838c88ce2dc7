"""POS rounding: a POS that computes tax once per tax group (on the subtotal) prints a total that per-line
rounding misses by a cent or a few. Such tickets are accepted at ingestion and invoiced with the printed total,
every Concepto and Traslado inside SAT's windows (docs/cfdi-engine.md, "POS rounding")."""

import datetime as dt
import os
import types
import zoneinfo
from decimal import ROUND_HALF_UP
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lxml import etree

from invoicing.cfdi.builder import build_global, build_ingreso
from invoicing.cfdi.catalogs import SAT_TASAS_O_CUOTAS
from invoicing.cfdi.inputs import Emisor, GlobalInfo, Receptor
from invoicing.cfdi.linecalc import fit_printed_total
from invoicing.cfdi.money import decimals_of, tax_limits
from invoicing.cfdi.seal import seal_document
from invoicing.cfdi.validation import validate
from invoicing.cfdi.verify import verify
from invoicing.cfdi.xml import to_bytes
from invoicing.cfdi.xsd import xsd_issues
from invoicing.engine_inputs import engine_tax
from tickets.ingest.drafts import normalize
from tickets.ingest.normalize import Context, TicketRejected, net_hint
from tickets.zones import PostalInfo

CENT = D("0.01")
EMISOR = Emisor("EKU9003173C9", "ESCUELA KEMPER URGATE", "601")
RECEPTOR = Receptor("XIQB891116QE4", "BERENICE XIMO QUEZADA", "26015", "612", "G03")
WHEN = "2026-03-10T12:00:00-08:00"
NOW = dt.datetime(2026, 3, 10, 21, 0, tzinfo=dt.UTC)

# Rate groups a POS prints separately: (IVA rate or None for exento, IEPS rate or None).
GROUPS = [("0.160000", None), ("0.080000", None), ("0.000000", None), (None, None), ("0.160000", "0.080000"),
          ("0.160000", "0.265000"), ("0.000000", "0.300000")]


def r2(x: D) -> D:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def context() -> Context:
    merchant = types.SimpleNamespace(pk=1, time_zone="America/Mexico_City", border_region_stimulus=True,
                                     tzinfo=zoneinfo.ZoneInfo("America/Mexico_City"))
    branch = types.SimpleNamespace(code="TIJ", postal_code="22000")
    ctx = Context(merchant, [branch])
    ctx._tasas = SAT_TASAS_O_CUOTAS
    ctx._postal = {"22000": PostalInfo("22000", "America/Tijuana", True, True)}
    ctx.now = NOW
    return ctx


def pos_ticket(lines: list[tuple[D, D, int]]) -> tuple[dict, D]:
    """A subtotal-taxed receipt: net prices, tax rounded once per rate group. Returns (payload, printed total)."""
    payload_lines, nets = [], {}
    for q, p, g in lines:
        iva, ieps = GROUPS[g]
        taxes = []
        if ieps is not None:
            taxes.append({"tax": "003", "factor": "Tasa", "rate": ieps})
        taxes.append({"tax": "002", "factor": "Exento"} if iva is None else {"tax": "002", "factor": "Tasa",
                                                                               "rate": iva})
        payload_lines.append({"product_code": "50202306", "unit_code": "H87", "description": f"Artículo {len(nets)}",
                              "quantity": str(q), "unit_price": str(p), "prices_include_tax": False,
                              "tax_object": "02", "taxes": taxes})
        nets.setdefault(g, []).append(r2(q * p))
    subtotal = sum((sum(v) for v in nets.values()), D(0))
    taxes_total = D(0)
    for g, values in nets.items():
        iva, ieps = GROUPS[g]
        base = sum(values)
        ieps_amount = r2(base * D(ieps)) if ieps else D(0)
        taxes_total += ieps_amount + (r2((base + ieps_amount) * D(iva)) if iva else D(0))
    total = subtotal + taxes_total
    return {"branch": "TIJ", "number": "P-1", "sold_at": WHEN, "payment_form": "01", "total": str(total),
            "lines": payload_lines}, total


def engine_ticket_of(draft):
    from invoicing.cfdi import inputs as cfdi

    return cfdi.Ticket(draft.number, tuple(
        cfdi.TicketLine(description=ln.description, quantity=ln.quantity, unit_price=ln.unit_price,
                        clave_prod_serv=ln.product_code, clave_unidad=ln.unit_code, discount=ln.discount,
                        objeto_imp=ln.tax_object, taxes=tuple(engine_tax(t) for t in ln.taxes), amount=ln.amount,
                        net=net_hint(ln.quantity, ln.unit_price, ln.prices_include_tax, ln.discount))
        for ln in draft.lines), payment_form=draft.payment_form, total=draft.total)


def assert_windows(c) -> None:
    """Every concept Traslado inside Anexo 20's window (the engine's validate checks it too; said twice here)."""
    for k in c.conceptos:
        for t in k.traslados:
            if t.importe is not None:
                lo, hi = tax_limits(t.base, t.tasa_o_cuota, min(decimals_of(t.importe), 6))
                assert lo <= t.importe <= hi, (k.descripcion, t)


line = st.tuples(
    st.one_of(st.integers(1, 6).map(D), st.decimals(min_value=D("0.005"), max_value=D("9"), places=3)),
    st.decimals(min_value=D("0.01"), max_value=D("999.99"), places=2),
    st.integers(0, len(GROUPS) - 1),
).filter(lambda t: r2(t[0] * t[1]) > 0)


@given(st.lists(line, min_size=1, max_size=10))
@example([(D(1), D("0.55"), 0), (D(1), D("0.55"), 0)])  # 0.0880 + 0.0880: 0.18 per line, 0.17 on the subtotal
@example([(D(3), D("0.33"), 0)] * 10)
# Random sweeps found these: lines alone in their group, with IEPS and IVA, that the old compounded net → gross
# put two cents off the receipt (one line, one cent of tolerance: refused).
@example([(D("7.297"), D("224.73"), 3), (D("2.888"), D("793.46"), 2), (D(1), D("990.28"), 1),
          (D(6), D("564.49"), 6), (D("4.581"), D("421.59"), 5)])
@example([(D("1.393"), D("230.33"), 1), (D(3), D("356.63"), 3), (D(1), D("381.27"), 2), (D(2), D("609.61"), 3),
          (D(6), D("835.89"), 3), (D("5.307"), D("465"), 5)])
# A line with IEPS and IVA may need a cent of each: the group of two such lines below is two cents off.
@example([(D(1), D("0.55"), 5), (D(1), D("0.55"), 5), (D(1), D("0.55"), 5)])
# Derandomized so CI runs the same 150 tickets every time; HYPOTHESIS_RANDOM=1 runs a random sweep.
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=not os.environ.get("HYPOTHESIS_RANDOM"))
def test_a_subtotal_taxed_ticket_is_invoiced_with_its_printed_total(csd, lines):
    payload, printed = pos_ticket(lines)
    draft = normalize(payload, context())
    assert draft.total == printed
    c = build_ingreso([engine_ticket_of(draft)], emisor=EMISOR, receptor=RECEPTOR,
                      issued_at=NOW, lugar_expedicion="22000", tz="America/Tijuana")
    assert c.total == printed
    # The invoice shows the receipt's net amounts: the cents went to the taxes, never to a line's Importe.
    assert [k.importe for k in c.conceptos] == [r2(q * p) for q, p, _ in lines]
    assert [i for i in validate(c, csd=csd) if i.severity == "error"] == []
    assert_windows(c)
    root = seal_document(c, csd)
    assert xsd_issues(root) == []
    assert verify(to_bytes(root)).ok
    g = build_global([engine_ticket_of(draft)], emisor=EMISOR, issued_at=NOW, lugar_expedicion="22000",
                     info=GlobalInfo("04", "03", 2026), tz="America/Tijuana")
    assert g.total == printed
    assert [i for i in validate(g) if i.severity == "error"] == []


def test_the_cent_of_the_audit_ticket(csd, sat_schema, sat_cadena):
    # Two lines of 0.55 + IVA: per line 0.088 → 0.09 each (0.18); on the subtotal 1.10 × 0.16 = 0.176 → 0.18…
    # and 0.55 × 3 lines at 0.16: per line 0.09 × 3 = 0.27, on the subtotal 0.264 → 0.26.
    payload, printed = pos_ticket([(D(1), D("0.55"), 0)] * 3)
    assert printed == D("1.91")
    draft = normalize(payload, context())
    assert draft.total == printed and any("ajustó un centavo" in w for w in draft.warnings)
    c = build_ingreso([engine_ticket_of(draft)], emisor=EMISOR, receptor=RECEPTOR, issued_at=NOW,
                      lugar_expedicion="22000", tz="America/Tijuana")
    assert c.total == D("1.91") and c.impuestos.total_traslados == D("0.26")
    xml = to_bytes(seal_document(c, csd))
    reparsed = etree.fromstring(xml)
    assert sat_schema.validate(reparsed), sat_schema.error_log
    assert verify(xml).ok


def test_more_than_a_cent_per_taxed_line_is_not_rounding():
    payload, printed = pos_ticket([(D(1), D("10.00"), 0)])
    payload["total"] = str(printed + D("0.02"))
    with pytest.raises(TicketRejected) as exc:
        normalize(payload, context())
    assert "no coincide" in exc.value.errors["total"][0] and "un centavo por impuesto de cada partida" in exc.value.errors["total"][0]


def test_untaxed_lines_cannot_absorb_a_cent():
    payload, printed = pos_ticket([(D(1), D("10.00"), 2), (D(1), D("5.00"), 3)])  # IVA 0 % and exento
    payload["total"] = str(printed + CENT)
    with pytest.raises(TicketRejected):
        normalize(payload, context())


def test_fit_moves_the_lines_rounded_furthest_first():
    from invoicing.cfdi.inputs import IVA_16

    # Exact IVA: 0.0848 (→0.08, 0.48 of a cent short) and 0.0816 (→0.08, 0.16 short): +1 goes to the first.
    lines = [(D("0.61"), D(0), D(1), (IVA_16,), "02"), (D("0.59"), D(0), D(1), (IVA_16,), "02")]
    assert fit_printed_total(lines, D("1.21"), "t") == [1, 0]
    assert fit_printed_total(lines, D("1.20"), "t") == [0, 0]
