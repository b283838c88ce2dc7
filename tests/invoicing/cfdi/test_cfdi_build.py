import base64
from decimal import Decimal as D

import pytest
from lxml import etree

from invoicing.cfdi.builder import build_egreso, build_global, build_ingreso, fecha_local
from invoicing.cfdi.cadena import cadena_original, fast_cadena
from invoicing.cfdi.errors import BuildError
from invoicing.cfdi.inputs import (
    IVA_0,
    IVA_8,
    IVA_16,
    IVA_EXENTO,
    GlobalInfo,
    Receptor,
    Related,
    Ticket,
    TicketLine,
    ieps_cuota,
    ieps_tasa,
)
from invoicing.cfdi.parser import parse_cfdi
from invoicing.cfdi.seal import seal_document, verify_seal
from invoicing.cfdi.validation import validate
from invoicing.cfdi.xml import to_bytes

UUID = "6D7434A6-E3F2-47AD-9E4C-08849946AFA0"


def mixed_ticket(number="T-2001", payment="01"):
    return Ticket(
        number,
        (
            TicketLine("Refresco 600 ml", D("2"), D("18.50"), "50202306", "H87", taxes=(ieps_tasa("0.08"), IVA_16)),
            TicketLine("Manzana", D("1.235"), D("39.90"), "50301700", "KGM", discount=D("3"), taxes=(IVA_0,)),
            TicketLine("Libro", D("1"), D("250"), "55101500", "H87", taxes=(IVA_EXENTO,)),
            TicketLine("Gasolina", D("20.5"), D("23.99"), "15101514", "LTR", taxes=(ieps_cuota("6.4555"), IVA_16)),
            TicketLine("Servicio frontera", D("1"), D("108"), "80141600", "E48", taxes=(IVA_8,)),
            TicketLine("Donativo", D("1"), D("50"), "84101600", "E48", objeto_imp="01", taxes=()),
            TicketLine("Pan", D("3"), D("12.30"), "50181900", "H87", objeto_imp="03", taxes=()),
        ),
        payment_form=payment,
        discount=D("10"),
    )


def check_document(c, csd, sat_schema, sat_cadena):
    root = seal_document(c, csd)
    xml = to_bytes(root)
    reparsed = etree.fromstring(xml)
    assert sat_schema.validate(reparsed), sat_schema.error_log
    cadena = sat_cadena(reparsed)
    assert fast_cadena(c) == cadena
    assert verify_seal(cadena, c.sello, csd.info)
    assert [i for i in validate(c, csd=csd) if i.severity == "error"] == []
    return xml


def test_ingreso_total_matches_ticket_and_document_is_valid(csd, emisor, receptor, issued_at, sat_schema, sat_cadena):
    t = mixed_ticket()
    c = build_ingreso([t], emisor=emisor, receptor=receptor, issued_at=issued_at, lugar_expedicion="42501")
    expected = D("37.00") + D("49.28") - 3 + 250 + D("491.80") + 108 + 50 + D("36.90") - 10
    assert c.total == expected
    assert c.tipo_de_comprobante == "I" and c.metodo_pago == "PUE" and c.forma_pago == "01"
    assert [k.no_identificacion for k in c.conceptos] == ["T-2001"] * 7
    assert c.conceptos[5].objeto_imp == "01" and not c.conceptos[5].traslados
    assert c.conceptos[6].objeto_imp == "03" and not c.conceptos[6].traslados
    check_document(c, csd, sat_schema, sat_cadena)


def test_ingreso_from_several_tickets_uses_payment_form_of_largest(csd, emisor, receptor, issued_at, sat_schema, sat_cadena, ticket):
    c = build_ingreso(
        [ticket, mixed_ticket(payment="28")], emisor=emisor, receptor=receptor, issued_at=issued_at, lugar_expedicion="42501"
    )
    assert c.forma_pago == "28"
    assert c.total == D("91.00") + build_ingreso([mixed_ticket()], emisor=emisor, receptor=receptor, issued_at=issued_at, lugar_expedicion="42501").total
    check_document(c, csd, sat_schema, sat_cadena)


def test_fecha_is_local_time_without_fraction(issued_at):
    assert fecha_local(issued_at, "America/Mexico_City") == "2026-11-21T12:30:05"
    assert fecha_local(issued_at, "America/Tijuana") == "2026-11-21T10:30:05"
    assert fecha_local(issued_at, "America/Cancun") == "2026-11-21T13:30:05"


def test_naive_datetime_is_refused():
    from datetime import datetime

    with pytest.raises(ValueError):
        fecha_local(datetime(2026, 1, 1))  # noqa: DTZ001


def test_global_one_concept_per_ticket(csd, emisor, issued_at, sat_schema, sat_cadena, ticket):
    tickets = [ticket, mixed_ticket("T-2", payment="04"), mixed_ticket("T-3", payment="03")]
    c = build_global(tickets, emisor=emisor, issued_at=issued_at, lugar_expedicion="42501", info=GlobalInfo("04", "11", 2026))
    assert len(c.conceptos) == 3
    assert c.forma_pago == "04"  # first of the largest tickets
    assert c.receptor.rfc == "XAXX010101000" and c.receptor.domicilio_fiscal == "42501"
    assert c.receptor.uso_cfdi == "S01" and c.receptor.regimen_fiscal == "616"
    for k, t in zip(c.conceptos, tickets, strict=True):
        assert (k.clave_prod_serv, k.clave_unidad, k.descripcion, k.cantidad, k.unidad) == ("01010101", "ACT", "Venta", 1, None)
        assert k.no_identificacion == t.number
        assert k.valor_unitario == k.importe
    xml = check_document(c, csd, sat_schema, sat_cadena)
    assert 'Año="2026"'.encode() in xml


def test_egreso_for_ticket_in_global(csd, emisor, issued_at, sat_schema, sat_cadena, ticket):
    c = build_egreso(
        [ticket],
        emisor=emisor,
        receptor=Receptor.publico_en_general("42501", "G02"),
        related=[Related("01", (UUID,))],
        issued_at=issued_at,
        lugar_expedicion="42501",
        forma_pago="04",
    )
    assert c.tipo_de_comprobante == "E"
    k = c.conceptos[0]
    assert (k.clave_prod_serv, k.clave_unidad, k.no_identificacion) == ("84111506", "ACT", "T-1001")
    assert c.total == D("91.00")
    xml = check_document(c, csd, sat_schema, sat_cadena)
    assert b'TipoRelacion="01"' in xml


def test_egreso_for_nominative_invoice(csd, emisor, receptor, issued_at, sat_schema, sat_cadena):
    rec = Receptor(receptor.rfc, receptor.nombre, receptor.domicilio_fiscal, receptor.regimen_fiscal, "G02")
    c = build_egreso(
        [mixed_ticket()], emisor=emisor, receptor=rec, related=[Related("01", (UUID,))],
        issued_at=issued_at, lugar_expedicion="42501", forma_pago="01",
    )
    check_document(c, csd, sat_schema, sat_cadena)


def test_egreso_without_relation_is_refused(emisor, receptor, issued_at, ticket):
    with pytest.raises(BuildError):
        build_egreso([ticket], emisor=emisor, receptor=receptor, related=[], issued_at=issued_at, lugar_expedicion="42501", forma_pago="01")


def test_related_cfdis_any_tipo_relacion(csd, emisor, receptor, issued_at, sat_schema, sat_cadena, ticket):
    c = build_ingreso(
        [ticket], emisor=emisor, receptor=receptor, issued_at=issued_at, lugar_expedicion="42501",
        related=[Related("04", (UUID, UUID.lower())), Related("07", (UUID,))],
    )
    check_document(c, csd, sat_schema, sat_cadena)


def test_ticket_total_that_does_not_add_up_is_refused(emisor, receptor, issued_at):
    t = Ticket("T-9", (TicketLine("X", D("1"), D("10")),), total=D("10.01"))
    with pytest.raises(BuildError) as exc:
        build_ingreso([t], emisor=emisor, receptor=receptor, issued_at=issued_at, lugar_expedicion="42501")
    assert exc.value.code == "CFDI40119"
    assert "no coincide" in str(exc.value)


def test_fully_discounted_line_has_no_tax_rows(csd, emisor, receptor, issued_at, sat_schema, sat_cadena):
    t = Ticket("T-5", (TicketLine("Regalo", D("1"), D("20"), discount=D("20")), TicketLine("Taza", D("1"), D("116"))))
    c = build_ingreso([t], emisor=emisor, receptor=receptor, issued_at=issued_at, lugar_expedicion="42501")
    assert c.total == D("116.00")
    check_document(c, csd, sat_schema, sat_cadena)


def test_parser_round_trip(csd, emisor, receptor, issued_at):
    c = build_ingreso([mixed_ticket()], emisor=emisor, receptor=receptor, issued_at=issued_at, lugar_expedicion="42501")
    xml = to_bytes(seal_document(c, csd))
    parsed = parse_cfdi(xml)
    assert parsed.comprobante.total == c.total
    assert [k.importe for k in parsed.comprobante.conceptos] == [k.importe for k in c.conceptos]
    assert parsed.timbre is None
    assert cadena_original(parsed.root) == fast_cadena(parsed.comprobante)
    assert base64.b64decode(parsed.comprobante.certificado) == csd.info.der


@pytest.mark.slow
def test_global_of_5000_tickets_builds_validates_and_seals(csd, emisor, issued_at, sat_schema, sat_cadena):
    tickets = [
        Ticket(f"S1-{i:06d}", (TicketLine("Venta", D(1 + i % 7), D("19.90") + i % 113),
                               TicketLine("Dulce", D("1"), D("12.50"), taxes=(ieps_tasa("0.08"), IVA_16))),
               payment_form="01" if i % 3 else "04")
        for i in range(5000)
    ]
    c = build_global(tickets, emisor=emisor, issued_at=issued_at, lugar_expedicion="42501", info=GlobalInfo("01", "11", 2026))
    assert len(c.conceptos) == 5000
    assert [i for i in validate(c, csd=csd) if i.severity == "error"] == []
    root = seal_document(c, csd)
    assert sat_schema.validate(root)
    assert sat_cadena(root) == fast_cadena(c)
    assert verify_seal(fast_cadena(c), c.sello, csd.info)
