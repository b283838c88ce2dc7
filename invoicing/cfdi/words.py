"""The amount in words printed on the representación impresa ("importe con letra"), in Mexican Spanish.

    amount_in_words(Decimal("1234.50"), "MXN") → "MIL DOSCIENTOS TREINTA Y CUATRO PESOS 50/100 M.N."

Not a SAT requirement but what every Mexican invoice and cheque carries, so a reader checks the figure against
it. The long scale is used: 10^9 is "MIL MILLONES", 10^12 "UN BILLÓN" (Anexo 20 allows 18 integer digits).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

_UNITS = ("CERO", "UNO", "DOS", "TRES", "CUATRO", "CINCO", "SEIS", "SIETE", "OCHO", "NUEVE", "DIEZ", "ONCE",
          "DOCE", "TRECE", "CATORCE", "QUINCE", "DIECISÉIS", "DIECISIETE", "DIECIOCHO", "DIECINUEVE", "VEINTE",
          "VEINTIUNO", "VEINTIDÓS", "VEINTITRÉS", "VEINTICUATRO", "VEINTICINCO", "VEINTISÉIS", "VEINTISIETE",
          "VEINTIOCHO", "VEINTINUEVE")
_TENS = ("", "", "", "TREINTA", "CUARENTA", "CINCUENTA", "SESENTA", "SETENTA", "OCHENTA", "NOVENTA")
_HUNDREDS = ("", "CIENTO", "DOSCIENTOS", "TRESCIENTOS", "CUATROCIENTOS", "QUINIENTOS", "SEISCIENTOS",
             "SETECIENTOS", "OCHOCIENTOS", "NOVECIENTOS")
_MAX = 10**18 - 1

# Masculine currency names (singular, plural) and what follows the cents. "M.N." (moneda nacional) is how
# Mexican documents close an amount in pesos; other currencies close with their c_Moneda code.
CURRENCY_NAMES: dict[str, tuple[str, str, str]] = {
    "MXN": ("PESO", "PESOS", "M.N."),
    "USD": ("DÓLAR", "DÓLARES", "USD"),
    "EUR": ("EURO", "EUROS", "EUR"),
    "CAD": ("DÓLAR CANADIENSE", "DÓLARES CANADIENSES", "CAD"),
}


def _below_thousand(n: int, apocope: bool) -> str:
    """0 < n < 1000. ``apocope``: the form before a noun ("UN", "VEINTIÚN", "CIENTO UN")."""
    hundreds, rest = divmod(n, 100)
    words = []
    if hundreds:
        words.append("CIEN" if n == 100 else _HUNDREDS[hundreds])
    if rest:
        if rest < 30:
            word = _UNITS[rest]
        else:
            tens, unit = divmod(rest, 10)
            word = _TENS[tens] + (f" Y {_UNITS[unit]}" if unit else "")
        if apocope and word.endswith("UNO"):
            word = word[:-3] + ("ÚN" if rest == 21 else "UN")
        words.append(word)
    return " ".join(words)


def _below_million(n: int, apocope: bool) -> str:
    thousands, rest = divmod(n, 1000)
    words = []
    if thousands:
        # "MIL", never "UN MIL"; the thousands always take the apocope: "VEINTIÚN MIL", "CIENTO UN MIL".
        words.append("MIL" if thousands == 1 else f"{_below_thousand(thousands, True)} MIL")
    if rest:
        words.append(_below_thousand(rest, apocope))
    return " ".join(words)


def number_to_words(n: int, *, apocope: bool = False) -> str:
    """0 ≤ n < 10^18 in capital Spanish words: 101 → "CIENTO UNO"; with ``apocope`` (before a masculine
    noun) 101 → "CIENTO UN", 21 → "VEINTIÚN"."""
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= _MAX:
        raise ValueError(f"Fuera de rango para escribir con letra: {n!r}")
    if n == 0:
        return "CERO"
    words = []
    billions, rest = divmod(n, 10**12)
    millions, units = divmod(rest, 10**6)
    if billions:
        words.append("UN BILLÓN" if billions == 1 else f"{_below_million(billions, True)} BILLONES")
    if millions:
        words.append("UN MILLÓN" if millions == 1 else f"{_below_million(millions, True)} MILLONES")
    if units:
        words.append(_below_million(units, apocope))
    return " ".join(words)


def amount_in_words(amount: Decimal, currency: str = "MXN", places: int = 2) -> str:
    """The amount (rounded half-up to the currency's ``places``) in words, the integer part in words and the
    fraction as "NN/100". A currency without a known name is written with its code: "... 50/100 GBP"."""
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0:
        raise ValueError(f"Importe no válido para escribir con letra: {amount!r}")
    exponent = Decimal(1).scaleb(-places)
    rounded = amount.quantize(exponent, rounding=ROUND_HALF_UP)
    integer = int(rounded)
    fraction = f" {int((rounded - integer).scaleb(places)):0{places}d}/{10**places}" if places else ""
    names = CURRENCY_NAMES.get(currency)
    if names is None:
        return f"{number_to_words(integer)}{fraction} {currency}"
    words = number_to_words(integer, apocope=True)
    singular, plural, closing = names
    # "UN MILLÓN DE PESOS": a round million (or billion) takes "DE" before the noun.
    de = " DE" if integer and integer % 10**6 == 0 else ""
    noun = singular if integer == 1 else plural
    return f"{words}{de} {noun}{fraction} {closing}"
