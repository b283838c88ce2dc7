import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from invoicing.cfdi import catalogs
from invoicing.cfdi.builder import build_global, build_ingreso
from invoicing.cfdi.inputs import GlobalInfo, Receptor, Related
from invoicing.cfdi.money import Amounts, MoneyError
from invoicing.cfdi.qr import format_total, qr_url
from invoicing.cfdi.rfc import check_digit, rfc_issues
from invoicing.cfdi.validation import validate


@pytest.fixture
def doc(emisor, receptor, issued_at, ticket):
    return build_ingreso([ticket], emisor=emisor, receptor=receptor, issued_at=issued_at, lugar_expedicion="42501")


@pytest.fixture
def global_doc(emisor, issued_at, ticket):
    return build_global([ticket], emisor=emisor, issued_at=issued_at, lugar_expedicion="42501", info=GlobalInfo("04", "11", 2026))


def codes(c, **kw):
    return {i.code for i in validate(c, **kw)}


def with_receptor(c, **changes):
    c.receptor = dataclasses.replace(c.receptor, **changes)
    return c


def test_clean_documents_have_no_issues(doc, global_doc, csd):
    assert validate(doc, csd=csd) == []
    assert validate(global_doc, csd=csd) == []


def test_issue_has_code_path_spanish_message_and_severity(doc):
    with_receptor(doc, regimen_fiscal="616")
    issue = next(i for i in validate(doc) if i.code == "CFDI40161")
    assert issue.path == "Receptor.UsoCFDI" and issue.severity == "error"
    assert "no se permite con el régimen 616" in issue.message


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (dict(fecha="2026-11-21T12:30:05.123"), "CFDI40101"),
        (dict(metodo_pago="PPD"), "CFDI40105"),
        (dict(forma_pago="99"), "FORMAPAGO_99_PUE"),
        (dict(forma_pago="07"), "CFDI40104"),
        (dict(tipo_cambio=D("17.5")), "CFDI40114"),
        (dict(exportacion="02"), "CFDI40122"),
        (dict(lugar_expedicion="4250"), "CFDI40126"),
        (dict(lugar_expedicion="00001"), "CFDI40126"),  # five digits, but not in c_CodigoPostal
        (dict(subtotal=D("78.46")), "CFDI40108"),
        (dict(subtotal=D("78.445")), "CFDI40107"),
        (dict(total=D("91.01")), "CFDI40119"),
        (dict(descuento=D("5.00")), "CFDI40112"),
    ],
)
def test_header_rules(doc, change, code):
    for k, v in change.items():
        setattr(doc, k, v)
    assert code in codes(doc)


def test_descuento_greater_than_subtotal(doc):
    doc.conceptos[0].descuento = doc.conceptos[0].importe + 1
    doc.descuento = doc.conceptos[0].descuento
    assert {"CFDI40110", "CFDI40169"} <= codes(doc)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (dict(rfc="XIQB891116QE"), "RFC_FORMATO"),
        (dict(rfc="XIQB890231QE4"), "RFC_FECHA"),
        (dict(nombre="PUBLICO EN GENERAL"), "CFDI40146"),
        (dict(domicilio_fiscal="2601"), "CFDI40147"),
        (dict(residencia_fiscal="USA"), "CFDI40151"),
        (dict(regimen_fiscal="999"), "CFDI40157"),
        (dict(regimen_fiscal="601"), "CFDI40158"),
        (dict(uso_cfdi="ZZZ"), "CFDI40160"),
        (dict(regimen_fiscal="605"), "CFDI40161"),
        (dict(uso_cfdi="CN01"), "CFDI40161"),
    ],
)
def test_receptor_rules(doc, change, code):
    assert code in codes(with_receptor(doc, **change))


def test_personal_deductions_are_only_for_personas_fisicas(doc):
    assert "CFDI40161" in codes(with_receptor(doc, rfc="EKU9003173C9", regimen_fiscal="601", uso_cfdi="D01"))


def test_generic_rfc_rules(doc):
    with_receptor(doc, rfc="XAXX010101000", nombre="JUAN PEREZ", domicilio_fiscal="26015", regimen_fiscal="612")
    assert {"CFDI40149", "CFDI40159"} <= codes(doc)
    with_receptor(doc, rfc="XEXX010101000", domicilio_fiscal="42501", regimen_fiscal="616", uso_cfdi="G03")
    assert "CFDI40161" in codes(doc)


def test_check_digit_is_only_a_warning(doc):
    with_receptor(doc, rfc="XIQB891116QE5")
    issue = next(i for i in validate(doc) if i.code == "RFC_DIGITO")
    assert issue.severity == "warning"
    assert check_digit("EKU9003173C9") == "9"
    assert rfc_issues("XAXX010101000", "x") == []


def test_emisor_rules(doc):
    doc.emisor = dataclasses.replace(doc.emisor, regimen_fiscal="605")
    assert "CFDI40141" in codes(doc)
    doc.emisor = dataclasses.replace(doc.emisor, regimen_fiscal="000")
    assert "CFDI40140" in codes(doc)
    doc.emisor = dataclasses.replace(doc.emisor, regimen_fiscal="601", nombre="ESCUELA KEMPER URGATE SA DE CV")
    assert [i.severity for i in validate(doc) if i.code == "CFDI40139"] == ["warning"]
    doc.emisor = dataclasses.replace(doc.emisor, rfc="XAXX010101000")
    assert "CFDI40137" in codes(doc)


def test_certificate_rules(doc, csd):
    doc.emisor = dataclasses.replace(doc.emisor, rfc="CACX7605101P8", regimen_fiscal="612")
    assert "CFDI40139" in codes(doc, csd=csd)
    doc.fecha = "2028-01-01T00:00:00"
    assert "305" in codes(doc, csd=csd)


def test_72_hours_and_future(doc, issued_at):
    assert "401" not in codes(doc, now=issued_at + timedelta(hours=1))
    assert "401" in codes(doc, now=issued_at + timedelta(hours=80))
    assert "401" in codes(doc, now=issued_at - timedelta(hours=2))


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda k: setattr(k, "valor_unitario", D("0")), "CFDI40166"),
        (lambda k: setattr(k, "importe", D("120.00")), "CFDI40167"),
        (lambda k: setattr(k, "descuento", D("1.001")), "CFDI40168"),
        (lambda k: setattr(k, "objeto_imp", "09"), "CFDI40170"),
        (lambda k: setattr(k, "traslados", []), "CFDI40171"),
        (lambda k: setattr(k, "objeto_imp", "01"), "CFDI40172"),
        (lambda k: setattr(k.traslados[0], "base", D("0")), "CFDI40174"),
        (lambda k: setattr(k.traslados[0], "impuesto", "001"), "CFDI40175"),
        (lambda k: k.traslados.append(k.traslados[0]), "CFDI40176"),
        (lambda k: setattr(k.traslados[0], "tipo_factor", "Exento"), "CFDI40178"),
        (lambda k: setattr(k.traslados[0], "tasa_o_cuota", D("0.150000")), "CFDI40179"),
        (lambda k: setattr(k.traslados[0], "importe", D("12.60")), "CFDI40180"),
        (lambda k: setattr(k, "cantidad", D("0")), "CFDI40163"),
        (lambda k: setattr(k, "clave_prod_serv", "99999999"), "CFDI40162"),
        (lambda k: setattr(k, "clave_unidad", "ZZZ"), "CFDI40165"),
    ],
)
def test_concepto_rules(doc, mutate, code):
    mutate(doc.conceptos[0])
    assert code in codes(doc)


def test_summary_rules(doc):
    t = doc.impuestos.traslados[0]
    t.base += 1
    assert "CFDI40215" in codes(doc)
    t.base -= 1
    t.importe += 1
    assert "CFDI40221" in codes(doc)
    t.importe -= 1
    doc.impuestos.traslados.append(dataclasses.replace(t))
    assert "CFDI40218" in codes(doc)
    doc.impuestos.traslados.pop()
    doc.impuestos.total_traslados += 1
    assert "CFDI40205" in codes(doc)
    doc.impuestos = None
    assert "CFDI40201" in codes(doc)


def test_global_rules(global_doc):
    global_doc.informacion_global.periodicidad = "05"
    assert {"CFDI40132", "CFDI40135"} <= codes(global_doc)
    global_doc.informacion_global.periodicidad = "04"
    global_doc.informacion_global.meses = "13"
    assert "CFDI40134" in codes(global_doc)
    global_doc.informacion_global.meses = "11"
    global_doc.informacion_global.anio = "2024"
    assert "CFDI40136" in codes(global_doc)
    global_doc.informacion_global.anio = "2025"
    assert "CFDI40136" not in codes(global_doc)
    global_doc.metodo_pago = "PPD"
    global_doc.conceptos[0].descripcion = "Otra cosa"
    assert {"GLOBAL_METODO_PAGO", "GLOBAL_CONCEPTO"} <= codes(global_doc)
    global_doc.informacion_global = None
    assert "CFDI40130" in codes(global_doc)


def test_global_information_needs_publico_en_general(doc):
    from invoicing.cfdi.document import InformacionGlobal

    doc.informacion_global = InformacionGlobal("04", "11", "2026")
    assert "CFDI40130" in codes(doc)


def test_relation_rules(emisor, receptor, issued_at, ticket):
    c = build_ingreso([ticket], emisor=emisor, receptor=receptor, issued_at=issued_at, lugar_expedicion="42501",
                      related=[Related("05", ("not-a-uuid",)), Related("99", ())])
    assert {"CFDI40128", "CFDI40129"} <= codes(c)


def test_an_egreso_for_returned_goods_relates_with_03_and_needs_a_relation(doc):
    from invoicing.cfdi.document import CfdiRelacionados

    doc.tipo_de_comprobante = "E"
    doc.relacionados = [CfdiRelacionados("03", ["6D7434A6-E3F2-47AD-9E4C-08849946AFA0"])]
    assert "CFDI40128" not in codes(doc)
    doc.relacionados = [CfdiRelacionados("05", ["6D7434A6-E3F2-47AD-9E4C-08849946AFA0"])]
    assert "CFDI40128" in codes(doc)  # 05 is only for traslados
    doc.relacionados = []
    assert "EGRESO_SIN_RELACION" in codes(doc)


def test_catalog_helpers_filter_regimen_and_uso():
    assert {r.code for r in catalogs.regimenes_for("EKU9003173C9")} == {"601", "603", "610", "620", "622", "623", "624", "626"}
    usos = {u.code for u in catalogs.usos_for("XIQB891116QE4", "605")}
    assert "G03" not in usos and {"D01", "S01"} <= usos
    assert {u.code for u in catalogs.usos_for("XIQB891116QE4", "616")} == {"G02", "S01"}


def test_amounts_refuse_inconsistent_totals():
    Amounts(D("100.00"), D("0"), D("16.00"), D("0"), D("116.00"))
    with pytest.raises(MoneyError):
        Amounts(D("100.00"), D("0"), D("16.00"), D("0"), D("116.01"))


def test_qr_url():
    assert format_total(D("980.18")) == "980.18"
    assert format_total(D("1")) == "1.0"
    assert format_total(D("0")) == "0.0"
    assert format_total(D("1234.5678")) == "1234.5678"
    url = qr_url(uuid="U", rfc_emisor="A&B010101AB1", rfc_receptor="XAXX010101000", total=D("10.50"), sello="x" * 10 + "abcdefg=")
    assert url.endswith("?id=U&re=A&amp;B010101AB1&rr=XAXX010101000&tt=10.5&fe=abcdefg=")


def test_publico_en_general_receptor():
    r = Receptor.publico_en_general("42501")
    assert (r.rfc, r.nombre, r.regimen_fiscal, r.uso_cfdi, r.domicilio_fiscal) == (
        "XAXX010101000", "PUBLICO EN GENERAL", "616", "S01", "42501",
    )


def test_naive_now_is_not_needed(doc):
    assert validate(doc, now=datetime(2026, 11, 21, 19, 0, tzinfo=UTC)) == []
