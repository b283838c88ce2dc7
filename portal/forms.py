"""Shoppers' forms. The receptor's rules come from invoicing/services/receptor.py (one module for every path)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from invoicing.cfdi.catalogs import (
    REGIMENES_FISCALES,
    USOS_CFDI,
    receptor_matrix,
    regimenes_for,
    suggested_uso,
    usos_for,
)
from invoicing.cfdi.receptor import CAPITAL_PATTERN, foreign_countries
from invoicing.cfdi.rfc import RFC_EXTRANJERO, RFC_SEPARATORS, normalize_rfc, persona_of
from invoicing.services.receptor import INPUT_MAX_LENGTH, ReceptorData, receptor_review
from portal.shopper.glossary import regimen_name, uso_name
from portal.shopper.messages import shopper_message
from tickets.models import Merchant

_SPACES = re.compile(r"\s+")


class AccessibleForm(forms.Form):
    """Links each input to its hint and its error (aria-describedby) and marks invalid inputs."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            if field.help_text:
                field.widget.attrs["aria-describedby"] = f"{self[name].auto_id}-hint"

    def full_clean(self):
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                attrs = self.fields[name].widget.attrs
                ids = [i for i in [attrs.get("aria-describedby"), f"{self[name].auto_id}-error"] if i]
                attrs["aria-describedby"] = " ".join(ids)
                attrs["aria-invalid"] = "true"


class LookupForm(AccessibleForm):
    number = forms.CharField(label=_("Número de ticket"), max_length=64,
                             widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}),
                             help_text=_("Arriba del ticket, junto a «Ticket» o «Folio»."))
    total = forms.CharField(label=_("Total pagado"), max_length=20,
                            widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
                            help_text=_("Con centavos, como aparece junto a «TOTAL». Ejemplo: 1234.50"))
    sold_on = forms.DateField(label=_("Fecha de compra"), input_formats=["%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y"],
                              widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
                              help_text=_("La fecha impresa en el ticket."))

    def __init__(self, *args, merchant: Merchant, **kwargs):
        super().__init__(*args, **kwargs)
        self.merchant = merchant
        self.fields["number"].error_messages["required"] = _("Escribe el número de ticket.")
        self.fields["total"].error_messages["required"] = _("Escribe el total que pagaste.")
        self.fields["sold_on"].error_messages.update(
            required=_("Escribe la fecha de compra."), invalid=_("Escribe la fecha como dd/mm/aaaa.")
        )
        if merchant.require_branch_on_lookup:
            branches = [(b.code, b.name) for b in merchant.branches.all() if b.is_active]
            self.fields["branch"] = forms.ChoiceField(
                label=_("Sucursal"), choices=[("", _("Elige la sucursal"))] + branches,
                error_messages={"required": _("Elige la sucursal donde compraste."),
                                "invalid_choice": _("Elige la sucursal donde compraste.")},
            )

    def clean_number(self) -> str:
        return _SPACES.sub("", self.cleaned_data["number"]).upper()

    def clean_total(self) -> Decimal:
        raw = self.cleaned_data["total"].replace("$", "").replace(",", "").replace(" ", "")
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise ValidationError(gettext("Escribe el total con números, por ejemplo 1234.50.")) from None
        if not value.is_finite() or value < 0 or value.as_tuple().exponent < -2:
            raise ValidationError(gettext("Escribe el total con números y hasta dos decimales, por ejemplo 1234.50."))
        return value.quantize(Decimal("0.01"))


def regimen_choices(rfc: str = "") -> list[tuple[str, str]]:
    return [("", _("Elige tu régimen fiscal"))] + [(r.code, f"{r.code} · {regimen_name(r.code, r.description)}")
                                                   for r in regimenes_for(rfc)]


def uso_choices(rfc: str = "", regimen: str = "") -> list[tuple[str, str]]:
    return [("", _("Elige el uso de la factura"))] + [(u.code, f"{u.code} · {uso_name(u.code, u.description)}")
                                                   for u in usos_for(rfc, regimen)]


class CatalogChoiceField(forms.ChoiceField):
    """A select whose value the receptor rules judge (with their codes and messages), not the field: a value
    off the list gets the same answer here as through the API."""

    def valid_value(self, value) -> bool:
        return True


RECEPTOR_FIELDS = ("rfc", "name", "tax_regime", "postal_code", "cfdi_use", "foreign_country", "foreign_tax_id")
# What «Soy extranjero» sets (Anexo 20: a resident abroad invoices as XEXX010101000, régimen 616, uso S01); the
# page's script shows the same values, and the server applies them with or without it.
FOREIGN_RECEPTOR = {"rfc": RFC_EXTRANJERO, "tax_regime": "616", "cfdi_use": "S01", "postal_code": ""}


def country_choices() -> list[tuple[str, str]]:
    return [("", _("Elige tu país de residencia fiscal"))] + [(code, f"{name} ({code})")
                                                           for code, name in foreign_countries()]


# The hint under «Uso de la factura» suggests only a use the chosen régimen allows (catalogs.suggested_uso); the
# page's script rewrites it from the same texts (catalog_matrix) when the régimen changes.
USO_HINT = gettext_noop("Si no sabes cuál, elige {code} «{description}»: tu régimen lo permite y sirve para la "
                        "mayoría de las compras.")
USO_HINT_NONE = gettext_noop("Elige primero tu régimen fiscal: te decimos qué uso elegir si no sabes cuál.")


def uso_hint(rfc: str, regimen: str) -> str:
    code = suggested_uso(persona_of(rfc), regimen) if regimen in REGIMENES_FISCALES else ""
    if not code:
        return gettext(USO_HINT_NONE)
    return gettext(USO_HINT).format(code=code, description=uso_name(code, USOS_CFDI[code].description))


class FiscalDataForm(AccessibleForm):
    """The receptor's data. Cleaning and every rule (and message) come from invoicing/services/receptor.py,
    the module the API and late requests use too; the form only splits the emails and lays out the fields."""

    rfc = forms.CharField(
        label=_("RFC"), max_length=INPUT_MAX_LENGTH["rfc"], required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}),
        help_text=_("13 caracteres si eres persona física, 12 si es una empresa (persona moral)."))
    name = forms.CharField(
        label=_("Nombre o razón social"), max_length=INPUT_MAX_LENGTH["name"], required=False,
        widget=forms.TextInput(attrs={"autocomplete": "name", "autocapitalize": "characters"}),
        help_text=_("Como en tu Constancia de Situación Fiscal, en mayúsculas y sin el régimen de capital "
                  "(sin «S.A. DE C.V.», «S. DE R.L.»…): así lo pide el SAT."))
    tax_regime = CatalogChoiceField(label=_("Régimen fiscal"), choices=regimen_choices(), required=False,
                                    help_text=_("Aparece en tu Constancia, en «Regímenes»."))
    postal_code = forms.CharField(
        label=_("Código postal de tu domicilio fiscal"), max_length=INPUT_MAX_LENGTH["postal_code"], required=False,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "postal-code"}))
    cfdi_use = CatalogChoiceField(label=_("Uso de la factura (uso del CFDI)"), choices=uso_choices(), required=False,
                                  help_text=_(USO_HINT_NONE))
    emails = forms.CharField(
        label=_("Correo electrónico"), max_length=600,
        widget=forms.TextInput(attrs={"inputmode": "email", "autocomplete": "email", "spellcheck": "false"}),
        help_text=_("Ahí te enviamos la factura. Puedes escribir varios, separados por comas."))
    foreign = forms.BooleanField(
        label=_("Soy extranjero: resido fuera de México y no tengo RFC"), required=False,
        help_text=_("Facturamos con el RFC genérico de extranjero XEXX010101000, régimen 616 «Sin obligaciones "
                  "fiscales» y uso S01 «Sin efectos fiscales», como pide el SAT."))
    foreign_country = CatalogChoiceField(label=_("País de residencia fiscal"), choices=country_choices, required=False)
    foreign_tax_id = forms.CharField(
        label=_("Número de registro tributario en tu país (tax id)"), max_length=INPUT_MAX_LENGTH["foreign_tax_id"],
        required=False, widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text=_("Por ejemplo, tu EIN o SSN en Estados Unidos (9 dígitos)."))
    remember = forms.BooleanField(label=_("Recordar mis datos en este dispositivo"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["emails"].error_messages["required"] = _("Escribe al menos un correo para enviarte la factura.")
        self.warnings: tuple = ()  # the receptor rules' notices (RFC check digit, régimen de capital removed)
        for name in (*RECEPTOR_FIELDS, "emails"):  # a NUL character too gets the rules' answer, as in the API
            field = self.fields.get(name)
            if field is None:
                continue
            field.validators = [v for v in field.validators if not isinstance(v, ProhibitNullCharactersValidator)]
        # Server-side filtering of the lists (the page's script does the same live, from the same matrix).
        rfc = normalize_rfc(str(self.data.get("rfc") or self.initial.get("rfc") or ""))
        regimen = str(self.data.get("tax_regime") or self.initial.get("tax_regime") or "")
        if persona_of(rfc):
            self.fields["tax_regime"].widget.choices = regimen_choices(rfc)
            if regimen in REGIMENES_FISCALES:
                self.fields["cfdi_use"].widget.choices = uso_choices(rfc, regimen)
        self.fields["cfdi_use"].help_text = uso_hint(rfc, regimen)

    def clean_emails(self) -> tuple[str, ...]:
        return tuple(e for e in re.split(r"[\s,;]+", self.cleaned_data["emails"]) if e)

    def clean(self):
        data = super().clean()
        raw = {name: data.get(name) or "" for name in RECEPTOR_FIELDS}
        if data.get("foreign"):
            raw.update(FOREIGN_RECEPTOR)
        review = receptor_review(ReceptorData(**raw, emails=data.get("emails") or ()))
        for issue in review.errors:
            if issue.path not in self.errors:  # too long for the field already: one message is enough
                self.add_error(issue.path, ValidationError(shopper_message(issue.message), code=issue.code))
        cleaned = review.receptor
        for name in (*RECEPTOR_FIELDS, "emails"):
            if name in self.cleaned_data:
                self.cleaned_data[name] = getattr(cleaned, name)
        self.cleaned_data["foreign"] = cleaned.rfc == RFC_EXTRANJERO
        self.warnings = review.warnings
        return self.cleaned_data


class RfcCheckForm(AccessibleForm):
    rfc = forms.CharField(label=_("RFC con el que facturaste"), max_length=20,
                          error_messages={"required": _("Escribe el RFC con el que se facturó el ticket.")})

    def clean_rfc(self) -> str:
        return normalize_rfc(self.cleaned_data["rfc"])


class ConstanciaForm(AccessibleForm):
    # Optional for the shopper: the page never marks it required (a click on «Leer» without a file just says so).
    use_required_attribute = False

    constancia = forms.FileField(
        label=_("Constancia de Situación Fiscal (PDF, opcional)"),
        widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,.pdf"}),
        error_messages={"required": _("Elige el PDF de tu constancia.")},
        help_text=_("No es obligatoria: solo la leemos para llenar el formulario por ti y no la guardamos."))


class RegimenChoiceForm(AccessibleForm):
    """The Constancia listed several regímenes: which one this invoice is for."""

    tax_regime = forms.ChoiceField(label=_("¿Con qué régimen quieres facturar esta compra?"),
                                   widget=forms.RadioSelect,
                                   error_messages={"required": _("Elige uno de los regímenes de tu Constancia."),
                                                   "invalid_choice": _("Elige uno de los regímenes de tu Constancia.")})

    def __init__(self, *args, regimenes: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tax_regime"].choices = [(code, f"{code} · {regimen_name(code, REGIMENES_FISCALES[code].description)}")
                                             for code in regimenes if code in REGIMENES_FISCALES]


class ReceptorFixForm(FiscalDataForm):
    """After the PAC refused the invoice for the receptor's data: the same data, to correct on the same page.
    A foreigner's and «recordar mis datos» are not asked again."""

    foreign = foreign_country = foreign_tax_id = remember = None
    field_order = ["rfc", "name", "postal_code", "tax_regime", "cfdi_use", "emails"]


def catalog_matrix() -> dict:
    """What the fiscal data page's script needs for live filtering and hints, from the one definition of each
    rule: the régimen ↔ UsoCFDI matrix, RFC length → persona, RFC separators, the régimen de capital, what
    «Soy extranjero» sets."""
    matrix = dict(receptor_matrix())  # a copy: the catalogue's own dict may be cached
    matrix["regimenes"] = {code: regimen_name(code, name) for code, name in matrix["regimenes"].items()}
    matrix["usos"] = {code: uso_name(code, name) for code, name in matrix["usos"].items()}
    return {**matrix, "rfc_separators": RFC_SEPARATORS, "capital": CAPITAL_PATTERN, "foreign": FOREIGN_RECEPTOR,
            "uso_hint": gettext(USO_HINT), "uso_hint_none": gettext(USO_HINT_NONE), "text": _script_text()}


def _script_text() -> dict:
    """The words the page's script writes, in the page's language."""
    return {"moral": gettext("RFC de persona moral (empresa): te mostramos sus regímenes."),
            "fisica": gettext("RFC de persona física: te mostramos sus regímenes."),
            "regimen": gettext("Elige tu régimen fiscal"), "uso": gettext("Elige el uso de la factura"),
            "capital": gettext("Quitaremos «{capital}»: el SAT pide el nombre sin el régimen de capital, como en "
                               "tu Constancia.")}
