"""What the PDF template is given (invoicing/pdf.py document_context): SAT's key names in one query, the tax
wording, one precision per price column, the amount in words in the invoice's currency. No rendering here."""

from decimal import Decimal

import pytest
from django.template.loader import render_to_string

from invoicing.cfdi.parser import parse_cfdi
from invoicing.pdf import (
    Branding,
    breakable,
    document_context,
    fixed,
    importe_con_letra,
    places_needed,
    sat_key_names,
    tax_label,
)

BRANDING = Branding(name="ESCUELA KEMPER URGATE")


@pytest.mark.parametrize(("args", "label"), [
    (("002", "Tasa", Decimal("0.160000")), "IVA 16\u00a0%"),
    (("002", "Tasa", Decimal("0.080000")), "IVA 8\u00a0%"),
    (("002", "Tasa", Decimal("0.000000")), "IVA 0\u00a0%"),
    (("003", "Tasa", Decimal("0.265000")), "IEPS 26.5\u00a0%"),
    (("003", "Cuota", Decimal("1.645100")), "IEPS cuota 1.6451 por unidad"),
    (("002", "Exento", None), "IVA exento"),
    (("001", "Tasa", Decimal("0.100000")), "ISR 10\u00a0%"),
])
def test_doc_tax_labels_read_as_people_write_them(args, label):
    assert tax_label(*args) == label


def test_doc_price_column_has_one_precision_between_two_and_six():
    assert places_needed([Decimal("17.3"), Decimal("100"), None]) == 2
    assert places_needed([Decimal("17.32"), Decimal("76.725000")]) == 3
    assert places_needed([Decimal("17.32"), Decimal("25.511111")]) == 6
    assert places_needed([Decimal("0.1234567")]) == 6
    assert places_needed([]) == 2
    assert fixed(Decimal("17.3"), 3) == "17.300" and fixed(Decimal("1234.5"), 2) == "1,234.50"


def test_doc_breakable_text_reads_back_the_same():
    sello = "ZfE+pKlytBqj9KGHrJ83VgIBnZgHuarzVsxUGoLWm3iqqpla7/Kryb7USOH8y39TS+rZ5QJBlwj6uE2jws4k3cq4B=="
    assert breakable(sello).replace("\u200b", "") == sello
    assert max(len(chunk) for chunk in breakable(sello).split("\u200b")) == 6


def test_doc_key_names_take_one_query_for_the_whole_document(sat_keys, django_assert_num_queries):
    with django_assert_num_queries(1):
        names = sat_key_names(["14111514", "43211708", "14111514", "50202306"], ["H87", "XYZ", "H87"])
    assert names == {"14111514": "Blocs o cuadernos de papel", "50202306": "Refrescos", "H87": "Pieza"}
    with django_assert_num_queries(0):
        assert sat_key_names([], [None]) == {}


def test_doc_a_long_invoice_looks_its_keys_up_once(branch, make_stamped_invoice, sat_keys,
                                                   django_assert_num_queries):
    invoice = make_stamped_invoice(branch, lines=120)
    parsed = parse_cfdi(bytes(invoice.stamped_xml))
    with django_assert_num_queries(1):
        context = document_context(parsed, branding=BRANDING, sandbox=True)
    assert {line["clave_nombre"] for line in context["lines"]} == {
        "Blocs o cuadernos de papel", "Bolígrafos", "Refrescos", "Pan, galletas y pastelitos dulces", ""}
    assert {line["unidad_nombre"] for line in context["lines"]} == {"Pieza"}
    assert {line["unidad"] for line in context["lines"]} == {""}  # the merchant's "Pieza" says nothing more


def test_doc_without_loaded_catalogs_the_keys_print_alone(branch, make_stamped_invoice):
    invoice = make_stamped_invoice(branch, lines=2)
    context = document_context(parse_cfdi(bytes(invoice.stamped_xml)), branding=BRANDING, sandbox=False)
    line = context["lines"][0]
    assert (line["clave"], line["clave_nombre"], line["clave_unidad"], line["unidad_nombre"], line["unidad"]) == (
        "14111514", "", "H87", "", "Pieza")  # the XML's own Unidad is still printed under the key
    html = render_to_string("invoicing/pdf.html", {**context, "cancellation": None})
    assert '<td>H87<div class="sub">Pieza</div></td>' in html


@pytest.mark.parametrize(("moneda", "rate", "ending"), [
    ("MXN", None, "PESOS {cents}/100 M.N."),
    ("USD", Decimal("17.25"), "DÓLARES {cents}/100 USD"),
    ("EUR", Decimal("20.10"), "EUROS {cents}/100 EUR"),
])
def test_doc_amount_in_words_in_the_invoice_currency(branch, make_stamped_invoice, moneda, rate, ending):
    invoice = make_stamped_invoice(branch, lines=3, moneda=moneda, tipo_cambio=rate)
    c = parse_cfdi(bytes(invoice.stamped_xml)).comprobante
    context = document_context(parse_cfdi(bytes(invoice.stamped_xml)), branding=BRANDING, sandbox=True,
                               key_names={})
    cents = f"{c.total:.2f}"[-2:]
    assert c.moneda == moneda
    assert context["importe_letra"].endswith(ending.format(cents=cents)), context["importe_letra"]


def test_doc_a_document_without_amounts_has_no_amount_in_words():
    assert importe_con_letra(Decimal("0"), "XXX") == ""
    assert importe_con_letra(Decimal("1500"), "JPY") == "MIL QUINIENTOS JPY"  # c_Moneda: no decimals


def test_doc_a_light_brand_colour_is_darkened_for_text(branch, make_stamped_invoice):
    from invoicing.pdf import _ink, _luminance

    def contrast_on_white(color):
        return 1.05 / (_luminance(*(int(color[i:i + 2], 16) for i in (1, 3, 5))) + 0.05)

    assert _ink("#0B5FFF") == "#0b5fff"  # already legible: unchanged
    assert contrast_on_white(_ink("#F2C200")) >= 4.5 and _ink("#F2C200") != "#f2c200"
    xml = bytes(make_stamped_invoice(branch).stamped_xml)
    context = document_context(parse_cfdi(xml), branding=Branding(name="X", color="#F2C200"), sandbox=False,
                               key_names={})
    assert (context["brand_color"], context["brand_ink"]) == ("#F2C200", _ink("#F2C200"))

