"""One ticket payload (our JSON, or a CFDI XML the POS built) → a checked ``TicketDraft``, or the reasons why not.

Pure Python, no database: a batch of 10,000 tickets is validated here in a fraction of a second, then stored
in bulk by ``tickets.ingest.store``. Amounts go through the CFDI engine's line arithmetic (the same
``spread_ticket_discount`` and ``solve`` the invoice builder uses), so the invoice later built from the ticket
has Total equal to the ticket's total to the cent, and a ticket that could never be invoiced is refused now.

Stored line semantics (what ``invoicing.engine_inputs`` must hand back to the engine):
``amount`` = tax-inclusive line amount before discounts (the engine's ``TicketLine.amount``) and
``discount`` = tax-inclusive discount of the line including its share of a ticket-level discount; the ticket
carries no separate discount for the engine. ``quantity``, ``unit_price`` and ``prices_include_tax`` are as
the POS sent them.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from invoicing.cfdi import catalogs
from invoicing.cfdi.errors import CfdiError
from invoicing.cfdi.inputs import IEPS, IVA, LineTax
from invoicing.cfdi.inputs import Ticket as EngineTicket
from invoicing.cfdi.inputs import TicketLine as EngineLine
from invoicing.cfdi.linecalc import fit_printed_total, is_gift, solve, spread_ticket_discount
from invoicing.cfdi.money import ZERO, round_money

ONE = Decimal(1)
CENT = Decimal("0.01")
MICRO = Decimal("0.000001")
MAX_MONEY = Decimal("1e15")
MAX_RATE = Decimal("1e12")  # Ticket.exchange_rate holds 12 integer digits
MAX_LINES = 1000
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
FUTURE_SKEW = dt.timedelta(minutes=10)
NO_EXCHANGE = frozenset({"XXX", "XTS"})  # c_Moneda keys for "no currency" and tests: never a sale
# What the API's schema promises for a currency (tickets/api/serializers.py): three letters, either case; the
# catalog decides the rest. Nothing else reaches the catalog, so the schema and this check say the same.
CURRENCY_PATTERN = r"^[A-Za-z]{3}$"
_CURRENCY_RE = re.compile(CURRENCY_PATTERN)
TAX_OBJECTS = frozenset({"01", "02", "03"})
_PRODUCT = re.compile(r"^[0-9]{8}$")
_UNIT = re.compile(r"^[A-Z0-9]{1,3}$")
# Control characters and «|» (SAT refuses them), lone UTF-16 surrogates (a JSON "\ud800" decodes to one: no
# UTF-8 encoding exists, so hashing, storing or answering it crashed) and U+FFFE/U+FFFF (not XML text).
# One search per field; which of them it was is worked out only for the error message.
_BAD_TEXT = re.compile("[\x00-\x1f|\ud800-\udfff\ufffe\uffff]")
_NOT_TEXT = re.compile("[\ud800-\udfff\ufffe\uffff]")


class TicketRejected(Exception):
    """The payload cannot become a ticket; ``errors`` maps each field path to Spanish messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))


@dataclass(slots=True)
class LineDraft:
    product_code: str
    unit_code: str
    sku: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    prices_include_tax: bool
    tax_object: str
    taxes: list[dict]
    amount: Decimal  # tax-inclusive, before discounts
    discount: Decimal  # tax-inclusive, line discount + share of the ticket discount


@dataclass(slots=True)
class Header:
    """What a payload says about the ticket as a whole (our JSON, or a POS's CFDI)."""

    number: str | None
    branch_code: str | None
    sold_at: dt.datetime | None
    currency: str | None
    rate: Decimal | None  # as sent by the POS (None: look it up in the merchant's table)
    payment_form: str | None
    discount: Decimal
    total: Decimal | None
    document: bytes | None = None
    tax_paths: list[str] = field(default_factory=list)  # per line: where its taxes are, for error paths
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class TicketDraft:
    branch_code: str
    number: str
    sold_at: dt.datetime
    currency: str
    exchange_rate: Decimal | None
    payment_form: str
    subtotal: Decimal
    discount: Decimal
    tax_total: Decimal
    total: Decimal
    lines: list[LineDraft]
    document: bytes | None = None
    fingerprint: str = ""
    extra: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class _Errors(dict):
    def add(self, path: str, message: str) -> None:
        self.setdefault(path, []).append(message)


# --- scalar readers: each returns None and records an error when the value is unusable ----------------


def _code(raw, default: str) -> str | None:
    """A catalog key as sent: a string (or an int like 1 for "01"), else None, so that membership tests against
    the catalogs never meet a list or an object (unhashable: a TypeError, i.e. a 500)."""
    if raw is None:
        return default
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    return raw if isinstance(raw, str) else None


def _text(raw, path, errs, *, max_len, required=True, default=""):
    if raw is None or raw == "":
        if required:
            errs.add(path, "Este campo es obligatorio.")
            return None
        return default
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str):
        errs.add(path, "Debe ser texto.")
        return None
    value = raw.strip()
    if not value:
        if required:
            errs.add(path, "Este campo es obligatorio.")
            return None
        return default
    if len(value) > max_len:
        errs.add(path, f"Admite a lo más {max_len} caracteres.")
        return None
    if _BAD_TEXT.search(value):
        if _NOT_TEXT.search(value):
            errs.add(path, "Contiene caracteres que no son texto Unicode válido (p. ej. un sustituto UTF-16 "
                           "suelto como \\ud800); envía el texto en UTF-8.")
        else:
            errs.add(path, "Contiene caracteres de control o «|», que el SAT no admite.")
        return None
    return value


def _shown(raw, size: int = 40) -> str:
    """Input quoted back in an error: printable characters only (a lone surrogate cannot even be encoded)."""
    return "".join(ch for ch in str(raw)[:size] if ch.isprintable())


def _decimal(raw, path, errs, *, places: int, required=True, positive=False, default=None):
    if raw is None or raw == "":
        if required:
            errs.add(path, "Este campo es obligatorio.")
        return default
    if isinstance(raw, Decimal):
        value = raw
    elif isinstance(raw, bool):
        errs.add(path, "Debe ser un número.")
        return None
    elif isinstance(raw, (int, str)):
        try:
            value = Decimal(raw.strip() if isinstance(raw, str) else raw)
        except InvalidOperation:
            errs.add(path, f"«{_shown(raw)}» no es un número.")
            return None
    elif isinstance(raw, float):
        value = Decimal(repr(raw))
    else:
        errs.add(path, "Debe ser un número.")
        return None
    if not value.is_finite():
        errs.add(path, "Debe ser un número finito.")
        return None
    exp = value.as_tuple().exponent
    if isinstance(exp, int) and exp < -places and value != value.quantize(Decimal(1).scaleb(-places)):
        errs.add(path, f"Admite a lo más {places} decimales.")
        return None
    if value < 0 or (positive and value == 0):
        errs.add(path, "Debe ser mayor que cero." if positive else "No puede ser negativo.")
        return None
    if value >= MAX_MONEY:
        errs.add(path, "El valor es demasiado grande.")
        return None
    return value


def parse_datetime(raw, path, errs) -> dt.datetime | None:
    """An ISO 8601 date and time *with* its UTC offset. Without one the moment is ambiguous (the POS's clock
    zone, the merchant's, UTC?) and a wrong guess moves the sale to another day or month, so it is refused."""
    if not isinstance(raw, str) or not raw.strip():
        errs.add(path, "Fecha y hora obligatorias en formato ISO 8601 con diferencia de UTC, "
                       "p. ej. 2026-05-31T13:45:00-06:00.")
        return None
    try:
        value = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        errs.add(path, f"«{_shown(raw)}» no es una fecha y hora ISO 8601 (p. ej. 2026-05-31T13:45:00-06:00).")
        return None
    if value.tzinfo is None:
        errs.add(path, f"«{_shown(raw)}» no indica su diferencia de UTC: envía fecha y hora ISO 8601 con ella, "
                       "p. ej. 2026-05-31T13:45:00-06:00 (o …Z si es UTC).")
        return None
    if value.year < 2000:
        errs.add(path, "La fecha es demasiado antigua.")
        return None
    return value


def _bool(raw, path, errs, default: bool) -> bool:
    if raw is None:
        return default
    if isinstance(raw, bool):
        return raw
    errs.add(path, "Debe ser true o false.")
    return default


# --- taxes ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _tax_from_key(tax: str, factor: str, rate: Decimal | None) -> tuple[LineTax, dict]:
    canonical = {"tax": tax, "factor": factor, "rate": None if rate is None else format(rate, "f")}
    return LineTax(tax, factor, rate), canonical


def _taxes(raw, path, errs, tasas=None) -> tuple[tuple[LineTax, ...], list[dict]] | None:
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        errs.add(path, "Debe ser una lista de impuestos.")
        return None
    engine, stored, seen = [], [], set()
    for i, t in enumerate(raw):
        p = f"{path}[{i}]"
        if not isinstance(t, dict):
            errs.add(p, "Cada impuesto es un objeto {tax, factor, rate}.")
            return None
        if t.get("withheld"):
            errs.add(p, "Los tickets no admiten retenciones; factúralas directamente.")
            return None
        tax = _code(t.get("tax"), "")
        factor = _code(t.get("factor"), "Tasa")
        if tax not in (IVA, IEPS):
            errs.add(f"{p}.tax", "Impuesto trasladado: «002» (IVA) o «003» (IEPS).")
            return None
        if factor not in catalogs.TIPOS_FACTOR:
            errs.add(f"{p}.factor", "Tipo de factor: Tasa, Cuota o Exento.")
            return None
        if (tax, factor) in seen or tax in {k for k, _ in seen}:
            errs.add(p, "Cada impuesto aparece una sola vez por renglón.")
            return None
        seen.add((tax, factor))
        rate = None
        if factor != "Exento":
            rate = _decimal(t.get("rate"), f"{p}.rate", errs, places=6)
            if rate is None:
                return None
            rate = rate.quantize(MICRO)
            tasas = tasas or catalogs.SAT_TASAS_O_CUOTAS
            if not tasas.allows(tax, factor, rate):
                name = catalogs.IMPUESTOS[tax]
                errs.add(f"{p}.rate", f"La {factor.lower()} {rate} de {name} no está en el catálogo c_TasaOCuota del "
                                      f"SAT (admite {tasas.described(tax, factor)}).")
                return None
        line_tax, canonical = _tax_from_key(tax, factor, rate)
        engine.append(line_tax)
        stored.append(canonical)
    return tuple(engine), stored


def _gross_factor(taxes: tuple[LineTax, ...]) -> tuple[Decimal, Decimal]:
    """(multiplier, IEPS cuota per unit) that turn a net amount into a tax-inclusive one."""
    factor, cuota = ONE, ZERO
    for t in taxes:
        if t.factor == "Tasa":
            factor *= ONE + t.rate
        elif t.factor == "Cuota":
            cuota = t.rate
    return factor, cuota


def _net_priced_amount(net: Decimal, quantity: Decimal, taxes: tuple[LineTax, ...]) -> Decimal:
    """What a POS with net prices charges for a line, the way a CFDI reads it: the net rounded to the cent, each
    tax rounded on it (IEPS first, then IVA on net + IEPS). Compounding the rates unrounded would put a
    two-tax line a cent or two off the receipt, past the one cent per tax the printed total may differ by."""
    base = round_money(net)
    ieps = ZERO
    for t in taxes:
        if t.impuesto == IEPS and t.factor == "Tasa":
            ieps = round_money(base * t.rate)
        elif t.impuesto == IEPS and t.factor == "Cuota":
            ieps = round_money(quantity * t.rate)
    iva = next((round_money((base + ieps) * t.rate) for t in taxes if t.impuesto == IVA and t.factor == "Tasa"),
               ZERO)
    return base + ieps + iva


# --- lines ---------------------------------------------------------------------------------------------


def _line(raw, i, errs, tasas=None) -> tuple[LineDraft, EngineLine] | None:
    p = f"lines[{i}]"
    if not isinstance(raw, dict):
        errs.add(p, "Cada renglón es un objeto.")
        return None
    before = len(errs)
    product_code = _text(raw.get("product_code"), f"{p}.product_code", errs, max_len=8)
    if product_code and not _PRODUCT.match(product_code):
        errs.add(f"{p}.product_code", "ClaveProdServ: 8 dígitos del catálogo c_ClaveProdServ.")
    unit_code = _text(raw.get("unit_code"), f"{p}.unit_code", errs, max_len=3)
    if unit_code and not _UNIT.match(unit_code):
        errs.add(f"{p}.unit_code", "ClaveUnidad del catálogo c_ClaveUnidad, p. ej. H87.")
    description = _text(raw.get("description"), f"{p}.description", errs, max_len=1000)
    sku = _text(raw.get("sku"), f"{p}.sku", errs, max_len=100, required=False)
    quantity = _decimal(raw.get("quantity"), f"{p}.quantity", errs, places=6, positive=True)
    unit_price = _decimal(raw.get("unit_price"), f"{p}.unit_price", errs, places=6)
    include = _bool(raw.get("prices_include_tax"), f"{p}.prices_include_tax", errs, True)
    discount = _decimal(raw.get("discount"), f"{p}.discount", errs, places=6, required=False, default=ZERO)
    tax_object = _code(raw.get("tax_object"), "02")
    if tax_object not in TAX_OBJECTS:
        errs.add(f"{p}.tax_object", "ObjetoImp: «01», «02» o «03».")
    taxes = _taxes(raw.get("taxes"), f"{p}.taxes", errs, tasas)
    if taxes is not None:
        if tax_object == "02" and not taxes[0]:
            errs.add(f"{p}.taxes", "Con ObjetoImp 02 indica los impuestos del renglón (p. ej. IVA 0.160000).")
        elif tax_object in ("01", "03") and taxes[0]:
            errs.add(f"{p}.taxes", f"Con ObjetoImp {tax_object} no se desglosan impuestos: deja la lista vacía.")
    if len(errs) != before:
        return None
    engine_taxes, stored_taxes = taxes
    gross_taxes = engine_taxes if tax_object == "02" else ()
    if include:
        amount = round_money(quantity * unit_price)
        discount_gross = round_money(discount)
    else:
        factor, _ = _gross_factor(gross_taxes)
        amount = _net_priced_amount(quantity * unit_price, quantity, gross_taxes)
        discount_gross = round_money(discount * factor)
    return _draft_line(product_code, unit_code, sku, description, quantity, unit_price, include, tax_object,
                       engine_taxes, stored_taxes, amount, discount_gross)


def net_hint(quantity: Decimal, unit_price: Decimal, include: bool, discount: Decimal) -> Decimal | None:
    """The net amount a POS with net prices printed for an undiscounted line: the Base the invoice keeps
    (engine ``TicketLine.net``). Used here and by invoicing.engine_inputs, from the same stored values."""
    if include or discount:
        return None
    return round_money(quantity * unit_price)


def _draft_line(product_code, unit_code, sku, description, quantity, unit_price, include, tax_object,
                engine_taxes, stored_taxes, amount, discount) -> tuple[LineDraft, EngineLine]:
    draft = LineDraft(product_code, unit_code, sku, description, quantity, unit_price, include, tax_object,
                      stored_taxes, amount, discount)
    engine = EngineLine(description=description, quantity=quantity, unit_price=unit_price,
                        clave_prod_serv=product_code, clave_unidad=unit_code, discount=discount,
                        objeto_imp=tax_object, taxes=engine_taxes, amount=amount,
                        net=net_hint(quantity, unit_price, include, discount))
    return draft, engine


@lru_cache(maxsize=65536)
def _solve(gross, discount, quantity, taxes, objeto, net=None):
    """Retail repeats the same lines all day: the engine's split is pure, so cache it."""
    res = solve(gross, discount, quantity, taxes, objeto, "", net)
    return res.importe, res.discount, sum((t.importe for t in res.taxes if t.importe is not None), ZERO)


def _engine_path(path: str) -> str:
    path = path.removeprefix("ticket")
    return path.lstrip(".") or "lines"


# --- ticket ----------------------------------------------------------------------------------------------


class Context:
    """What validation needs from the database, loaded once per batch and only when asked: the merchant's
    branches, their postal codes' zone and border flag, its exchange rates, c_TasaOCuota.

    ``default_branch``: the branch of the API key (a POS belongs to a branch) for tickets that name none.
    """

    def __init__(self, merchant, branches, *, default_branch=None):
        self.merchant = merchant
        self.tz = merchant.tzinfo
        self.branches = {b.code: b for b in branches}
        code = getattr(default_branch, "code", None)
        self.default_branch = code if code in self.branches else None
        self.default_branch_inactive = code if code is not None and code not in self.branches else None
        self.now = None
        self._postal = None
        self._rates = None
        self._tasas = None
        self._zones: dict = {}

    @property
    def tasas(self):
        if self._tasas is None:
            from tickets.catalogs import tax_rate_catalog

            self._tasas = tax_rate_catalog()
        return self._tasas

    def postal(self, branch_code: str):
        """SAT's catalog entry (tickets.zones.PostalInfo) of the branch's postal code."""
        if self._postal is None:
            from tickets.zones import postal_infos

            self._postal = postal_infos(b.postal_code for b in self.branches.values())
        return self._postal[self.branches[branch_code].postal_code]

    def branch_tz(self, branch_code: str | None):
        """The branch's local zone (its postal code's, else the merchant's)."""
        if branch_code not in self.branches:
            return self.tz
        zone = self._zones.get(branch_code)
        if zone is None:
            import zoneinfo

            name = self.postal(branch_code).time_zone
            try:
                zone = zoneinfo.ZoneInfo(name) if name else self.tz
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                zone = self.tz
            self._zones[branch_code] = zone
        return zone

    @property
    def rates(self):
        if self._rates is None:
            from tickets.exchange_rates import RateBook

            self._rates = RateBook(self.merchant.pk)
        return self._rates


def lines_from_json(raw: dict, ctx: Context, errs: _Errors) -> tuple[Header, list]:
    """A ticket sent as JSON: its header and lines (a POS's CFDI goes through tickets/ingest/document.py)."""
    h = _header(raw, ctx, errs)
    line_pairs = _lines(raw.get("lines"), errs, ctx.tasas)
    h.tax_paths = [f"lines[{i}].taxes" for i in range(len(line_pairs))]
    return h, line_pairs


def ticket_draft(raw: dict, ctx: Context, errs: _Errors, h: Header, line_pairs: list) -> TicketDraft:
    """Header and lines, from either source, checked together and priced: the draft, or ``TicketRejected``."""
    if errs:
        raise TicketRejected(dict(errs))
    now = ctx.now or dt.datetime.now(dt.UTC)
    if h.sold_at > now + FUTURE_SKEW:
        errs.add("sold_at", "La fecha de venta está en el futuro.")
    rate = _exchange_rate(h, ctx, errs)
    _border_vat(h, line_pairs, ctx, errs)
    if errs:
        raise TicketRejected(dict(errs))
    engine_ticket = EngineTicket(number=h.number, lines=tuple(e for _, e in line_pairs), payment_form=h.payment_form,
                                 discount=h.discount)
    try:
        spread = spread_ticket_discount(engine_ticket, "ticket")
    except CfdiError as exc:
        for issue in exc.issues:
            errs.add(_engine_path(issue.path), issue.message)
        raise TicketRejected(dict(errs)) from None
    charged = [g for g, _ in spread]
    if all(is_gift(g, d) for g, d in spread):
        raise TicketRejected({"lines": ["El ticket no tiene importe que facturar: todas sus partidas tienen precio 0."]})
    if h.total is not None and round_money(h.total) != sum(charged, ZERO):
        deltas = _fit_total(h, line_pairs, spread, errs)
        if deltas is None:
            raise TicketRejected(dict(errs))
        for (draft, _), delta in zip(line_pairs, deltas, strict=True):
            draft.amount += delta
        charged = [g + delta for g, delta in zip(charged, deltas, strict=True)]
    subtotal = discount_sum = tax_sum = ZERO
    lines = []
    for i, ((draft, engine), gross, (_, line_discount)) in enumerate(zip(line_pairs, charged, spread, strict=True)):
        draft.discount = line_discount
        lines.append(draft)
        if is_gift(gross, line_discount):
            continue
        try:
            importe, net_discount, taxes = _solve(gross, line_discount, engine.quantity, engine.taxes,
                                                  engine.objeto_imp, engine.net)
        except CfdiError as exc:
            errs.add(f"lines[{i}]", str(exc))
            continue
        subtotal += importe
        discount_sum += net_discount
        tax_sum += taxes
    if errs:
        raise TicketRejected(dict(errs))
    for name, computed in (("subtotal", subtotal), ("tax_total", tax_sum)):
        given = raw.get(name)
        if given is not None and h.document is None:
            value = _decimal(given, name, errs, places=2)
            if value is not None and abs(value - computed) > CENT * len(lines):
                errs.add(name, f"No coincide con lo calculado de los renglones ({computed}).")
    if errs:
        raise TicketRejected(dict(errs))
    total = sum(charged, ZERO)
    draft = TicketDraft(h.branch_code, h.number, h.sold_at, h.currency, rate, h.payment_form, subtotal,
                        discount_sum, tax_sum, total, lines, h.document, warnings=h.warnings)
    draft.fingerprint = fingerprint(draft)
    return draft


def _fit_total(h: Header, line_pairs, spread, errs) -> list[Decimal] | None:
    """The printed total a cent or a few away from the lines' sum (a POS that computes tax on the subtotal):
    move one cent of tax per line, inside SAT's windows (docs/cfdi-engine.md, "POS rounding")."""
    items = [(g, d, e.quantity, e.taxes, e.objeto_imp, e.net if not d else None)
             for (_, e), (g, d) in zip(line_pairs, spread, strict=True)]
    computed = sum((g for g, _ in spread), ZERO)
    where = "document" if h.document is not None else "total"
    try:
        cents = fit_printed_total(items, round_money(h.total), where)
    except CfdiError as exc:
        for issue in exc.issues:
            errs.add(where, issue.message)
        return None
    moved = sum(1 for c in cents if c)
    h.warnings.append(
        f"El total impreso ({round_money(h.total)}) difiere {round_money(h.total) - computed:+} de la suma de los "
        f"renglones ({computed}): se ajustó un centavo de impuesto en {moved} renglón(es), dentro de la tolerancia "
        "de redondeo del SAT.")
    return [CENT * c for c in cents]


def _header(raw, ctx, errs) -> Header:
    number = _text(raw.get("number"), "number", errs, max_len=64)
    branch_code = raw.get("branch")
    if branch_code is None or branch_code == "":
        branch_code = ctx.default_branch
        if branch_code is None:
            errs.add("branch", no_branch_message(ctx))
    else:
        branch_code = _text(branch_code, "branch", errs, max_len=40)
        if branch_code and branch_code not in ctx.branches:
            errs.add("branch", f"La sucursal «{branch_code}» no existe en este comercio.")
    sold_at = parse_datetime(raw.get("sold_at"), "sold_at", errs)
    currency, rate = _currency(raw.get("currency"), raw.get("exchange_rate"), errs)
    payment_form = _code(raw.get("payment_form"), "01")
    if payment_form not in catalogs.FORMAS_PAGO or payment_form == "99":
        errs.add("payment_form", "Forma de pago del catálogo c_FormaPago (p. ej. 01 efectivo, 04 tarjeta de "
                                 "crédito, 28 tarjeta de débito); un ticket pagado no usa 99.")
    discount = _decimal(raw.get("discount"), "discount", errs, places=2, required=False, default=ZERO)
    total = _decimal(raw.get("total"), "total", errs, places=2)
    return Header(number, branch_code, sold_at, currency, rate, payment_form, discount, total)


def no_branch_message(ctx: Context, why: str = "") -> str:
    if ctx.default_branch_inactive:
        return (f"Indica la sucursal («branch»){why}: la sucursal «{ctx.default_branch_inactive}» de esta llave de API "
                "está inactiva.")
    return f"Indica la sucursal («branch»){why}: esta llave de API no está ligada a una sucursal."


def _currency(currency, rate_raw, errs, path="exchange_rate"):
    """The currency (a c_Moneda key with cents) and the rate as sent; the rate itself is settled later
    (``_exchange_rate``), once the branch and the sale's local date are known."""
    currency = _code(currency, "MXN")
    well_formed = isinstance(currency, str) and _CURRENCY_RE.fullmatch(currency) is not None
    if well_formed:
        currency = currency.upper()  # c_Moneda keys are ISO 4217 codes: «usd» is USD
    row = catalogs.moneda(currency) if well_formed else None
    if row is None or currency in NO_EXCHANGE:
        errs.add("currency", f"«{_shown(currency)}» no es una moneda del catálogo c_Moneda del SAT (p. ej. MXN, USD, "
                             "EUR).")
        return currency, None
    if row[1] != 2:
        errs.add("currency", f"La moneda {currency} ({row[0]}) se expresa con {row[1]} decimales; solo se admiten "
                             "monedas con centavos (2 decimales).")
        return currency, None
    rate = _decimal(rate_raw, path, errs, places=6, required=False, positive=True)
    if rate is not None and rate >= MAX_RATE:
        errs.add(path, "El tipo de cambio es demasiado grande.")
        return currency, None
    if currency == "MXN" and rate is not None and rate != ONE:
        errs.add(path, "Con moneda MXN el tipo de cambio se omite (o es 1).")
    return currency, rate


def _exchange_rate(h: Header, ctx: Context, errs, path="exchange_rate") -> Decimal | None:
    """The ticket's TipoCambio: the POS's, checked against the merchant's table when it has that day's rate
    (c_Moneda's variation, CFDI40118), or the table's. None for MXN. Unknown → refused now."""
    if h.currency == "MXN" or h.currency is None:
        return None
    day = h.sold_at.astimezone(ctx.branch_tz(h.branch_code)).date()
    found = ctx.rates.rate_for(h.currency, day)
    if h.rate is not None:
        if found is not None:
            lo, hi = catalogs.tipo_cambio_range(found[0])
            if not lo <= h.rate <= hi:
                errs.add(path, f"El tipo de cambio {h.rate} se aleja más de {catalogs.MONEDA_VARIACION_PCT} % del "
                               f"registrado para {h.currency} el {day:%d/%m/%Y} ({found[0]}): el SAT no lo acepta "
                               "sin clave de confirmación (CFDI40118). Revísalo.")
        return h.rate
    if found is None:
        errs.add(path, f"Con moneda {h.currency} el tipo de cambio es obligatorio: envíalo en «exchange_rate» o "
                       f"registra el de {h.currency} para el {day:%d/%m/%Y} en la tabla de tipos de cambio del "
                       "comercio.")
        return None
    return found[0]


def _border_vat(h: Header, line_pairs, ctx: Context, errs) -> None:
    """IVA 8 % is the border-region stimulus: the merchant must apply it and the branch's postal code must be in
    the region per SAT's c_CodigoPostal (its «estímulo franja fronteriza» flag)."""
    reason = None
    for i, (_, engine) in enumerate(line_pairs):
        for j, t in enumerate(engine.taxes):
            if t.impuesto != IVA or t.factor != "Tasa" or t.rate != catalogs.IVA_FRONTERA:
                continue
            if reason is None:
                reason = _border_refusal(h.branch_code, ctx) or ""
            if reason:
                path = h.tax_paths[i] if i < len(h.tax_paths) else f"lines[{i}].taxes"
                errs.add(f"{path}[{j}].rate", reason)


def _border_refusal(branch_code: str, ctx: Context) -> str | None:
    if not ctx.merchant.border_region_stimulus:
        return ("El IVA al 8 % es el estímulo fiscal de la región fronteriza y este comercio no declara aplicarlo: "
                "usa 0.160000 (o actívalo en los datos del comercio si presentaste el aviso al SAT).")
    branch = ctx.branches[branch_code]
    info = ctx.postal(branch_code)
    if not info.known:
        return (f"No se puede confirmar que el código postal {branch.postal_code} de la sucursal {branch.code} esté en "
                "la región fronteriza: no está en el catálogo c_CodigoPostal cargado (manage.py load_sat_catalogs).")
    if not info.border:
        return (f"La sucursal {branch.code} (CP {branch.postal_code}) no está en la región fronteriza según el "
                "catálogo c_CodigoPostal del SAT: ahí el IVA es 0.160000, no 0.080000.")
    return None


def _lines(raw, errs, tasas=None) -> list:
    if not isinstance(raw, list) or not raw:
        errs.add("lines", "El ticket necesita al menos un renglón (o «document» con el CFDI).")
        return []
    if len(raw) > MAX_LINES:
        errs.add("lines", f"Un ticket admite a lo más {MAX_LINES} renglones.")
        return []
    out = []
    for i, line in enumerate(raw):
        key = _line_key(line, tasas)
        hit = _LINE_CACHE.get(key) if key is not None else None
        if hit is not None:
            draft, engine = hit
            out.append((LineDraft(draft.product_code, draft.unit_code, draft.sku, draft.description, draft.quantity,
                                  draft.unit_price, draft.prices_include_tax, draft.tax_object, draft.taxes,
                                  draft.amount, draft.discount), engine))
            continue
        pair = _line(line, i, errs, tasas)
        if pair is not None:
            # The ticket adjusts its own draft (discount share, rounding cent): the cache keeps a pristine copy.
            out.append((copy.copy(pair[0]), pair[1]))
            if key is not None:
                if len(_LINE_CACHE) >= _LINE_CACHE_MAX:
                    _LINE_CACHE.clear()
                _LINE_CACHE[key] = pair
    return out


# A store sells the same lines all day: a line already checked is not checked again. The key is the line's
# repr, which tells 1, 1.0, True, Decimal("1") and "1" apart.
_LINE_CACHE: dict = {}
_LINE_CACHE_MAX = 50_000


def _line_key(raw, tasas=None):
    # A line checked against another c_TasaOCuota (a catalog reloaded meanwhile) is checked again.
    return (repr(raw), hash(tasas)) if isinstance(raw, dict) else None


def decode_document(raw, errs) -> bytes | None:
    if not isinstance(raw, str):
        errs.add("document", "Debe ser el XML del CFDI en base64.")
        return None
    if len(raw) > MAX_DOCUMENT_BYTES * 4 // 3 + 4:
        errs.add("document", f"El CFDI pesa más de {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB.")
        return None
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        errs.add("document", "No es base64 válido.")
        return None


def _fmt(value: Decimal | None) -> str:
    if value is None:
        return ""
    return format(value.normalize(), "f") if value else "0"


def fingerprint(draft: TicketDraft) -> str:
    """Hash of what the POS said (normalised): equal payloads → equal hash, whatever the number formatting."""
    parts = [draft.branch_code, draft.number, draft.sold_at.astimezone(dt.UTC).isoformat(), draft.currency,
             _fmt(draft.exchange_rate), draft.payment_form, _fmt(draft.total)]
    for line in draft.lines:
        parts += [line.product_code, line.unit_code, line.sku, line.description, _fmt(line.quantity),
                  _fmt(line.unit_price), "1" if line.prices_include_tax else "0", line.tax_object,
                  ",".join(f"{t['tax']}:{t['factor']}:{t['rate']}" for t in line.taxes), _fmt(line.amount),
                  _fmt(line.discount)]
    if draft.document is not None:
        parts.append(hashlib.sha256(draft.document).hexdigest())
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
