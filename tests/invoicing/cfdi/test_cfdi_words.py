"""The amount in words of the representación impresa (invoicing/cfdi/words.py)."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invoicing.cfdi.words import amount_in_words, number_to_words


@pytest.mark.parametrize(("n", "words"), [
    (0, "CERO"),
    (1, "UNO"),
    (15, "QUINCE"),
    (16, "DIECISÉIS"),
    (21, "VEINTIUNO"),
    (22, "VEINTIDÓS"),
    (31, "TREINTA Y UNO"),
    (100, "CIEN"),
    (101, "CIENTO UNO"),
    (115, "CIENTO QUINCE"),
    (500, "QUINIENTOS"),
    (999, "NOVECIENTOS NOVENTA Y NUEVE"),
    (1000, "MIL"),
    (1001, "MIL UNO"),
    (2021, "DOS MIL VEINTIUNO"),
    (21_000, "VEINTIÚN MIL"),
    (100_000, "CIEN MIL"),
    (101_000, "CIENTO UN MIL"),
    (1_000_000, "UN MILLÓN"),
    (21_000_000, "VEINTIÚN MILLONES"),
    (1_000_000_000, "MIL MILLONES"),
    (1_000_000_000_000, "UN BILLÓN"),
])
def test_words_numbers(n, words):
    assert number_to_words(n) == words


@pytest.mark.parametrize(("amount", "words"), [
    ("0", "CERO PESOS 00/100 M.N."),
    ("0.99", "CERO PESOS 99/100 M.N."),
    ("1", "UN PESO 00/100 M.N."),
    ("1.50", "UN PESO 50/100 M.N."),
    ("21", "VEINTIÚN PESOS 00/100 M.N."),
    ("31.00", "TREINTA Y UN PESOS 00/100 M.N."),
    ("100", "CIEN PESOS 00/100 M.N."),
    ("101", "CIENTO UN PESOS 00/100 M.N."),
    ("1234.50", "MIL DOSCIENTOS TREINTA Y CUATRO PESOS 50/100 M.N."),
    ("21000", "VEINTIÚN MIL PESOS 00/100 M.N."),
    ("1000000", "UN MILLÓN DE PESOS 00/100 M.N."),
    ("1500000", "UN MILLÓN QUINIENTOS MIL PESOS 00/100 M.N."),
    ("2000000.00", "DOS MILLONES DE PESOS 00/100 M.N."),
    ("1000001", "UN MILLÓN UN PESOS 00/100 M.N."),
    ("999999999.99", "NOVECIENTOS NOVENTA Y NUEVE MILLONES NOVECIENTOS NOVENTA Y NUEVE MIL NOVECIENTOS NOVENTA Y "
                     "NUEVE PESOS 99/100 M.N."),
    ("1000000000", "MIL MILLONES DE PESOS 00/100 M.N."),
    ("45.505", "CUARENTA Y CINCO PESOS 51/100 M.N."),  # rounded half-up to the currency's cents
])
def test_words_pesos(amount, words):
    assert amount_in_words(Decimal(amount)) == words


def test_words_other_currencies():
    assert amount_in_words(Decimal("1234.50"), "USD") == "MIL DOSCIENTOS TREINTA Y CUATRO DÓLARES 50/100 USD"
    assert amount_in_words(Decimal("1"), "USD") == "UN DÓLAR 00/100 USD"
    assert amount_in_words(Decimal("21.10"), "EUR") == "VEINTIÚN EUROS 10/100 EUR"
    assert amount_in_words(Decimal("2000000"), "EUR") == "DOS MILLONES DE EUROS 00/100 EUR"
    # A currency without a Spanish name here: the number in words and its code; its own decimals.
    assert amount_in_words(Decimal("21.5"), "GBP") == "VEINTIUNO 50/100 GBP"
    assert amount_in_words(Decimal("1500"), "JPY", places=0) == "MIL QUINIENTOS JPY"
    assert amount_in_words(Decimal("3.1234"), "CLF", places=4) == "TRES 1234/10000 CLF"


@pytest.mark.parametrize("bad", [Decimal("-1"), Decimal("NaN"), Decimal("1e18"), 1.5])
def test_words_refuse_what_cannot_be_an_invoice_total(bad):
    with pytest.raises(ValueError):
        amount_in_words(bad)


_VALUES = {w: i for i, w in enumerate(
    "CERO UNO DOS TRES CUATRO CINCO SEIS SIETE OCHO NUEVE DIEZ ONCE DOCE TRECE CATORCE QUINCE DIECISÉIS "
    "DIECISIETE DIECIOCHO DIECINUEVE VEINTE VEINTIUNO VEINTIDÓS VEINTITRÉS VEINTICUATRO VEINTICINCO VEINTISÉIS "
    "VEINTISIETE VEINTIOCHO VEINTINUEVE".split())}
_VALUES |= {"UN": 1, "VEINTIÚN": 21, "CIEN": 100, "CIENTO": 100}
_VALUES |= {w: 10 * i for i, w in enumerate("TREINTA CUARENTA CINCUENTA SESENTA SETENTA OCHENTA NOVENTA".split(), 3)}
_VALUES |= {w: 100 * i for i, w in enumerate(
    "DOSCIENTOS TRESCIENTOS CUATROCIENTOS QUINIENTOS SEISCIENTOS SETECIENTOS OCHOCIENTOS NOVECIENTOS".split(), 2)}


def _read_back(words: str) -> int:
    """Spanish words → number, written independently of the module: the property test's oracle."""
    billions = millions = thousands = small = 0
    for word in words.split():
        if word == "Y":
            continue
        if word == "MIL":
            thousands += (small or 1) * 1000
            small = 0
        elif word in ("MILLÓN", "MILLONES"):
            millions += (thousands + small) * 10**6
            thousands = small = 0
        elif word in ("BILLÓN", "BILLONES"):
            billions += (thousands + small) * 10**12
            thousands = small = 0
        else:
            small += _VALUES[word]
    return billions + millions + thousands + small


@given(st.integers(min_value=0, max_value=10**18 - 1))
def test_words_read_back_to_the_number(n):
    words = number_to_words(n)
    assert _read_back(words) == n
    assert "  " not in words and words == words.strip()
    assert _read_back(number_to_words(n, apocope=True)) == n
