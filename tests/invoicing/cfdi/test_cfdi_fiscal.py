"""Issue 18 in the engine: TipoCambio, c_TasaOCuota 2026, IVA 8 % backstop, zero-price lines, branch zones."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from lxml import etree

from invoicing.cfdi import catalogs as cat
from invoicing.cfdi.builder import build_egreso, build_global, build_ingreso
from invoicing.cfdi.cadena import fast_cadena
from invoicing.cfdi.errors import BuildError
from invoicing.cfdi.inputs import (
    IVA_8,
    IVA_16,
    GlobalInfo,
    Receptor,
    Related,
    Ticket,
    TicketLine,
    ieps_cuota,
    ieps_tasa,
)
from invoicing.cfdi.seal import seal_document
from invoicing.cfdi.validation import validate
from invoicing.cfdi.verify import verify
from invoicing.cfdi.xml import render, to_bytes

WHEN = datetime(2026, 11, 21, 18, 30, 5, tzinfo=UTC)


def usd_ticket(number="U-1", total="116.00"):
    return Ticket(number, (TicketLine("Souvenir", D("1"), D(total), "60141000", "H87", taxes=(IVA_16,)),),
                  payment_form="04", total=D(total))


def sealed_ok(c, csd, sat_schema, sat_cadena, **rules):
    root = seal_document(c, csd)
    xml = to_bytes(root)
    reparsed = etree.fromstring(xml)
    assert sat_schema.validate(reparsed), sat_schema.error_log
    assert fast_cadena(c) == sat_cadena(reparsed)
    assert [i for i in validate(c, csd=csd, **rules) if i.severity == "error"] == []
    result = verify(xml)
    assert result.ok, result.summary()
    return reparsed


@pytest.mark.parametrize(("moneda", "rate"), [("USD", D("17.250300")), ("EUR", D("19.1"))])
def test_foreign_currency_ingreso_carries_its_tipo_cambio(moneda, rate, csd, emisor, receptor, sat_schema,
                                                         sat_cadena):
    c = build_ingreso([usd_ticket()], emisor=emisor, receptor=receptor, issued_at=WHEN, lugar_expedicion="42501",
                      moneda=moneda, tipo_cambio=rate)
    root = sealed_ok(c, csd, sat_schema, sat_cadena)
    assert (root.get("Moneda"), D(root.get("TipoCambio")), root.get("Total")) == (moneda, rate, "116.00")
    assert f"|{moneda}|{rate.normalize():f}|116.00|" in fast_cadena(c)


def test_foreign_currency_global_and_egreso_carry_it_too(csd, emisor, sat_schema, sat_cadena):
    info = GlobalInfo("04", "10", 2026)
    g = build_global([usd_ticket("U-1"), usd_ticket("U-2", "58.00")], emisor=emisor, issued_at=WHEN,
                     lugar_expedicion="42501", info=info, moneda="USD", tipo_cambio=D("17.5"))
    assert sealed_ok(g, csd, sat_schema, sat_cadena).get("TipoCambio") == "17.5"
    e = build_egreso([usd_ticket()], emisor=emisor, receptor=Receptor.publico_en_general("42501", "G02"),
                     related=[Related("01", ("7F1C8B0E-3B1A-4C1E-9D6A-2B5E8F0A1C3D",))], issued_at=WHEN,
                     lugar_expedicion="42501", forma_pago="04", moneda="USD", tipo_cambio=D("17.5"))
    assert sealed_ok(e, csd, sat_schema, sat_cadena).get("TipoCambio") == "17.5"


def test_mxn_omits_tipo_cambio_and_a_one_is_dropped(emisor, receptor):
    c = build_ingreso([usd_ticket()], emisor=emisor, receptor=receptor, issued_at=WHEN, lugar_expedicion="42501",
                      tipo_cambio=D("1"))
    assert c.tipo_cambio is None and render(c).get("TipoCambio") is None


@pytest.mark.parametrize(("moneda", "rate", "code"), [
    ("USD", None, "CFDI40115"),
    ("MXN", D("17.5"), "CFDI40114"),
    ("XXX", None, "CFDI40116"),
    ("USD", D("0"), "CFDI40117"),
    ("USD", D("17.1234567"), "CFDI40117"),
    ("ZZZ", D("1"), "CFDI40113"),
])
def test_builder_refuses_what_sat_refuses_about_currency(moneda, rate, code, emisor, receptor):
    with pytest.raises(BuildError) as exc:
        build_ingreso([usd_ticket()], emisor=emisor, receptor=receptor, issued_at=WHEN, lugar_expedicion="42501",
                      moneda=moneda, tipo_cambio=rate)
    assert exc.value.code == code


def test_validation_names_currency_rules_and_the_variation(emisor, receptor):
    c = build_ingreso([usd_ticket()], emisor=emisor, receptor=receptor, issued_at=WHEN, lugar_expedicion="42501",
                      moneda="USD", tipo_cambio=D("18.50"))
    codes = lambda **kw: {i.code for i in validate(c, **kw) if i.severity == "error"}  # noqa: E731
    assert "CFDI40118" not in codes(tipo_cambio_referencia=D("17.80"))  # 3.9 % away: inside c_Moneda's 5 %
    assert "CFDI40118" in codes(tipo_cambio_referencia=D("17.50"))  # 5.7 % away
    c.tipo_cambio = None
    assert "CFDI40115" in codes()
    c.moneda, c.tipo_cambio = "MXN", D("17")
    assert "CFDI40114" in codes()
    c.moneda, c.tipo_cambio = "XXX", D("1")
    assert "CFDI40116" in codes()


def test_currency_catalog_comes_from_sat():
    assert cat.moneda("USD") == ("Dólar americano", 2)
    assert cat.currency_places("JPY") == 0 and cat.currency_places("BHD") == 3
    assert cat.moneda("ZZZ") is None
    assert cat.tipo_cambio_range(D("20")) == (D("19"), D("21"))


# --- c_TasaOCuota 2026 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("tax", "ok"), [
    (ieps_cuota("3.0818"), True),  # sugary drinks 2026
    (ieps_cuota("1.50"), True),  # drinks with sweeteners 2026
    (ieps_cuota("72.1605"), True),  # 2026 ceiling
    (ieps_cuota("72.1606"), False),
    (ieps_tasa("0.50"), True),  # gambling 2026
    (ieps_tasa("0.08"), True),  # violent video games 2026
    (ieps_tasa("1.60"), True),
    (ieps_tasa("2.00"), False),  # cigarettes 200 %: not in SAT's catalog yet
])
def test_ieps_2026_against_sats_catalog(tax, ok, emisor, receptor):
    line = TicketLine("Producto", D("1"), D("500"), "50202306", "H87", taxes=(tax, IVA_16))
    c = build_ingreso([Ticket("I-1", (line,))], emisor=emisor, receptor=receptor, issued_at=WHEN,
                      lugar_expedicion="42501")
    codes = {i.code for i in validate(c) if i.severity == "error"}
    assert ("CFDI40179" not in codes) is ok, codes


def test_a_newer_loaded_catalog_is_honoured(emisor, receptor):
    line = TicketLine("Cigarros", D("1"), D("300"), "50202306", "H87", taxes=(ieps_tasa("2.00"), IVA_16))
    c = build_ingreso([Ticket("I-1", (line,))], emisor=emisor, receptor=receptor, issued_at=WHEN,
                      lugar_expedicion="42501")
    newer = cat.TasasOCuotas([*cat.SAT_TASAS_O_CUOTAS.rules, cat.TasaOCuotaRule("003", "Tasa", D("2.000000"))])
    assert not [i for i in validate(c, tasas=newer) if i.code == "CFDI40179"]
    message = next(i.message for i in validate(c) if i.code == "CFDI40179")
    assert "1.600000" in message and "2.000000" in message


def test_engine_catalog_is_sats_published_table():
    # SAT's 2026-01-01 c_TasaOCuota (phpcfdi cfdi_40_reglas_tasa_cuota): 19 rows, IEPS cuota up to 72.1605.
    rules = cat.SAT_TASAS_O_CUOTAS.rules
    assert len(rules) == 19
    cuota = next(r for r in rules if (r.impuesto, r.factor) == ("003", "Cuota"))
    assert (cuota.minimo, cuota.valor) == (D("0.000000"), D("72.160500"))
    assert not cat.SAT_TASAS_O_CUOTAS.allows("003", "Tasa", D("2.000000"))
    assert cat.SAT_TASAS_O_CUOTAS.allows("002", "Tasa", D("0.080000"))
    assert not cat.SAT_TASAS_O_CUOTAS.allows("002", "Cuota", D("1.000000"))


def test_border_vat_is_refused_when_the_issuer_may_not_apply_it(csd, emisor, receptor, sat_schema,
                                                               sat_cadena):
    line = TicketLine("Servicio", D("1"), D("108"), "80141600", "E48", taxes=(IVA_8,))
    c = build_ingreso([Ticket("F-1", (line,))], emisor=emisor, receptor=receptor, issued_at=WHEN,
                      lugar_expedicion="22000")
    assert "IVA_FRONTERA" in {i.code for i in validate(c, iva_frontera=False)}
    sealed_ok(c, csd, sat_schema, sat_cadena, iva_frontera=True)


# --- zero-price lines -----------------------------------------------------------------------------------------


def test_a_gift_line_is_left_out_and_a_fully_discounted_one_is_carried(csd, emisor, receptor, sat_schema,
                                                                      sat_cadena):
    t = Ticket("G-1", (
        TicketLine("Café", D("2"), D("35.00"), "50201700", "H87", taxes=(IVA_16,)),
        TicketLine("Galleta de regalo", D("1"), D("0.00"), "50181900", "H87", taxes=(IVA_16,)),
        TicketLine("Taza promocional", D("1"), D("99.00"), "52151600", "H87", discount=D("99.00"), taxes=(IVA_16,)),
    ), total=D("70.00"))
    c = build_ingreso([t], emisor=emisor, receptor=receptor, issued_at=WHEN, lugar_expedicion="42501")
    assert [k.descripcion for k in c.conceptos] == ["Café", "Taza promocional"]
    assert c.total == D("70.00") and c.conceptos[1].descuento == c.conceptos[1].importe
    sealed_ok(c, csd, sat_schema, sat_cadena)
    g = build_global([t], emisor=emisor, issued_at=WHEN, lugar_expedicion="42501", info=GlobalInfo("04", "10", 2026))
    assert g.total == D("70.00")
    sealed_ok(g, csd, sat_schema, sat_cadena)


def test_a_ticket_of_only_gifts_has_nothing_to_invoice(emisor, receptor):
    t = Ticket("G-2", (TicketLine("Regalo", D("1"), D("0"), "50181900", "H87", taxes=(IVA_16,)),))
    with pytest.raises(BuildError) as exc:
        build_ingreso([t], emisor=emisor, receptor=receptor, issued_at=WHEN, lugar_expedicion="42501")
    assert exc.value.code == "CFDI40166"


# --- Fecha in the branch's zone -------------------------------------------------------------------------------


def test_fecha_is_written_in_the_zone_given(emisor, receptor):
    moment = datetime(2026, 2, 1, 7, 30, tzinfo=UTC)  # 31 Jan 23:30 in Tijuana, 1 Feb 01:30 in Mexico City
    tijuana = build_ingreso([usd_ticket()], emisor=emisor, receptor=receptor, issued_at=moment,
                            lugar_expedicion="22000", tz="America/Tijuana")
    assert tijuana.fecha == "2026-01-31T23:30:00"
    assert validate(tijuana, now=moment, tz="America/Tijuana") == validate(tijuana)
    centro = build_ingreso([usd_ticket()], emisor=emisor, receptor=receptor, issued_at=moment,
                           lugar_expedicion="22000", tz="America/Mexico_City")
    # Written in Mexico City time, the PAC (which reads it in Tijuana time) sees it two hours ahead.
    assert "401" in {i.code for i in validate(centro, now=moment, tz="America/Tijuana")}
