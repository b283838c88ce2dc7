"""Shoppers' forms. Rules come from the CFDI engine (RFC, régimen/UsoCFDI matrix) and SAT's catalogs."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from invoicing.cfdi.catalogs import REGIMENES_FISCALES, USOS_CFDI, regimenes_for, usos_for
from invoicing.cfdi.errors import ERROR
from invoicing.cfdi.rfc import is_generic, normalize_rfc, rfc_issues
from invoicing.cfdi.validation import _CAPITAL  # the engine's régimen-de-capital pattern (CFDI40139)
from tickets.catalogs import postal_code_exists
from tickets.models import Merchant

MAX_EMAILS = 5
_SPACES = re.compile(r"\s+")
_RFC_JUNK = re.compile(r"[\s\-_.]")


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
    number = forms.CharField(label="Número de ticket", max_length=64,
                             widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}),
                             help_text="Arriba del ticket, junto a «Ticket» o «Folio».")
    total = forms.CharField(label="Total pagado", max_length=20,
                            widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
                            help_text="Con centavos, como aparece junto a «TOTAL». Ejemplo: 1234.50")
    sold_on = forms.DateField(label="Fecha de compra", input_formats=["%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y"],
                              widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
                              help_text="La fecha impresa en el ticket.")

    def __init__(self, *args, merchant: Merchant, **kwargs):
        super().__init__(*args, **kwargs)
        self.merchant = merchant
        self.fields["number"].error_messages["required"] = "Escribe el número de ticket."
        self.fields["total"].error_messages["required"] = "Escribe el total que pagaste."
        self.fields["sold_on"].error_messages.update(
            required="Escribe la fecha de compra.", invalid="Escribe la fecha como dd/mm/aaaa."
        )
        if merchant.require_branch_on_lookup:
            branches = [(b.code, b.name) for b in merchant.branches.all() if b.is_active]
            self.fields["branch"] = forms.ChoiceField(
                label="Sucursal", choices=[("", "Elige la sucursal")] + branches,
                error_messages={"required": "Elige la sucursal donde compraste.",
                                "invalid_choice": "Elige la sucursal donde compraste."},
            )

    def clean_number(self) -> str:
        return _SPACES.sub("", self.cleaned_data["number"]).upper()

    def clean_total(self) -> Decimal:
        raw = self.cleaned_data["total"].replace("$", "").replace(",", "").replace(" ", "")
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise ValidationError("Escribe el total con números, por ejemplo 1234.50.") from None
        if not value.is_finite() or value < 0 or value.as_tuple().exponent < -2:
            raise ValidationError("Escribe el total con números y hasta dos decimales, por ejemplo 1234.50.")
        return value.quantize(Decimal("0.01"))


def regimen_choices(rfc: str = "") -> list[tuple[str, str]]:
    items = regimenes_for(rfc) if rfc else REGIMENES_FISCALES.values()
    return [("", "Elige tu régimen fiscal")] + [(r.code, f"{r.code} · {r.description}") for r in items]


def uso_choices(rfc: str = "", regimen: str = "") -> list[tuple[str, str]]:
    if rfc and regimen:
        items = usos_for(rfc, regimen)
    else:
        items = [u for u in USOS_CFDI.values() if u.code not in ("CP01", "CN01")]
    return [("", "Elige el uso de la factura")] + [(u.code, f"{u.code} · {u.description}") for u in items]


def strip_regimen_capital(name: str) -> tuple[str, str]:
    """Upper-cased name without the régimen de capital (SAT's rule for CFDI 4.0), and what was removed."""
    upper = _SPACES.sub(" ", name).strip().upper()
    match = _CAPITAL.search(upper)
    if not match:
        return upper, ""
    return upper[: match.start()].rstrip(" ,"), match.group(0).strip()


class FiscalDataForm(AccessibleForm):
    rfc = forms.CharField(
        label="RFC", max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}),
        help_text="13 caracteres si eres persona física, 12 si es una empresa (persona moral).")
    name = forms.CharField(
        label="Nombre o razón social", max_length=300,
        widget=forms.TextInput(attrs={"autocomplete": "name", "autocapitalize": "characters"}),
        help_text="Como en tu Constancia de Situación Fiscal, en mayúsculas y sin el régimen de capital "
                  "(sin «S.A. DE C.V.», «S. DE R.L.»…): así lo pide el SAT.")
    tax_regime = forms.ChoiceField(label="Régimen fiscal", choices=regimen_choices(),
                                   help_text="Aparece en tu Constancia, en «Regímenes».")
    postal_code = forms.CharField(
        label="Código postal de tu domicilio fiscal", max_length=5,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "postal-code", "maxlength": "5"}))
    cfdi_use = forms.ChoiceField(label="Uso de la factura (uso del CFDI)", choices=uso_choices(),
                                 help_text="Si no sabes cuál, elige S01 «Sin efectos fiscales» o G03 «Gastos en "
                                           "general» si tu régimen lo permite.")
    emails = forms.CharField(
        label="Correo electrónico", max_length=600,
        widget=forms.TextInput(attrs={"inputmode": "email", "autocomplete": "email", "spellcheck": "false"}),
        help_text="Ahí te enviamos la factura. Puedes escribir varios, separados por comas.")
    remember = forms.BooleanField(label="Recordar mis datos en este dispositivo", required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        messages = {
            "rfc": "Escribe tu RFC.",
            "name": "Escribe tu nombre o razón social como aparece en tu Constancia de Situación Fiscal.",
            "tax_regime": "Elige tu régimen fiscal.",
            "postal_code": "Escribe el código postal de tu domicilio fiscal.",
            "cfdi_use": "Elige el uso de la factura.",
            "emails": "Escribe al menos un correo para enviarte la factura.",
        }
        for name, message in messages.items():
            self.fields[name].error_messages["required"] = message
        self.fields["tax_regime"].error_messages["invalid_choice"] = "Elige un régimen fiscal de la lista."
        self.fields["cfdi_use"].error_messages["invalid_choice"] = "Elige un uso de la lista."
        self.rfc_warning = ""
        self.name_removed = ""
        # Server-side filtering of the lists (JavaScript does the same live): the RFC typed decides them.
        rfc = normalize_rfc(_RFC_JUNK.sub("", str(self.data.get("rfc") or self.initial.get("rfc") or "")))
        regimen = str(self.data.get("tax_regime") or self.initial.get("tax_regime") or "")
        if len(rfc) in (12, 13):
            self.fields["tax_regime"].widget.choices = regimen_choices(rfc)
            if regimen in REGIMENES_FISCALES:
                self.fields["cfdi_use"].widget.choices = uso_choices(rfc, regimen)

    def clean_rfc(self) -> str:
        rfc = normalize_rfc(_RFC_JUNK.sub("", self.cleaned_data["rfc"]))
        if is_generic(rfc):
            raise ValidationError(
                "Ese es un RFC genérico (público en general o extranjero): para facturar necesitas tu propio RFC."
            )
        for issue in rfc_issues(rfc, "rfc", who="tu RFC"):
            if issue.severity == ERROR:
                raise ValidationError(issue.message)
            self.rfc_warning = issue.message
        return rfc

    def clean_name(self) -> str:
        name, removed = strip_regimen_capital(self.cleaned_data["name"])
        if not name:
            raise ValidationError("Escribe tu nombre o razón social sin el régimen de capital.")
        self.name_removed = removed
        return name

    def clean_postal_code(self) -> str:
        code = self.cleaned_data["postal_code"].strip()
        if not re.fullmatch(r"[0-9]{5}", code):
            raise ValidationError("El código postal tiene 5 dígitos, por ejemplo 06600.")
        if not postal_code_exists(code):
            raise ValidationError(
                f"El código postal {code} no existe en el catálogo del SAT. Escribe el de tu domicilio fiscal, "
                "como aparece en tu Constancia de Situación Fiscal."
            )
        return code

    def clean_emails(self) -> tuple[str, ...]:
        emails = [e for e in re.split(r"[\s,;]+", self.cleaned_data["emails"].strip().lower()) if e]
        if not emails:
            raise ValidationError(self.fields["emails"].error_messages["required"])
        if len(emails) > MAX_EMAILS:
            raise ValidationError(f"Escribe hasta {MAX_EMAILS} correos, separados por comas.")
        for email in emails:
            try:
                validate_email(email)
            except ValidationError:
                raise ValidationError(f"«{email}» no es un correo válido; revisa que esté bien escrito.") from None
        return tuple(dict.fromkeys(emails))

    def clean(self):
        data = super().clean()
        rfc, regimen, uso = data.get("rfc"), data.get("tax_regime"), data.get("cfdi_use")
        if rfc and regimen:
            persona = "moral (RFC de 12 caracteres)" if len(rfc) == 12 else "física (RFC de 13 caracteres)"
            if regimen not in {r.code for r in regimenes_for(rfc)}:
                reg = REGIMENES_FISCALES[regimen]
                self.add_error("tax_regime", f"El régimen {reg.code} «{reg.description}» no corresponde a una "
                                             f"persona {persona}. Elige otro de la lista.")
            elif uso and uso not in {u.code for u in usos_for(rfc, regimen)}:
                u, reg = USOS_CFDI[uso], REGIMENES_FISCALES[regimen]
                reason = (f"no es para una persona {persona}" if not (u.moral if len(rfc) == 12 else u.fisica)
                          else f"no se permite con el régimen {reg.code} «{reg.description}»")
                self.add_error("cfdi_use", f"El uso {u.code} «{u.description}» {reason}. Elige otro uso de la "
                                           "lista (por ejemplo S01 «Sin efectos fiscales») o revisa tu régimen.")
        return data


class RfcCheckForm(AccessibleForm):
    rfc = forms.CharField(label="RFC con el que facturaste", max_length=20,
                          error_messages={"required": "Escribe el RFC con el que se facturó el ticket."})

    def clean_rfc(self) -> str:
        return normalize_rfc(_RFC_JUNK.sub("", self.cleaned_data["rfc"]))


class ConstanciaForm(AccessibleForm):
    constancia = forms.FileField(
        label="Constancia de Situación Fiscal (PDF, opcional)",
        widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,.pdf"}),
        error_messages={"required": "Elige el PDF de tu constancia."},
        help_text="No es obligatoria: solo la leemos para llenar el formulario por ti y no la guardamos.")


def catalog_matrix() -> dict:
    """Régimen and UsoCFDI lists with the persona/régimen matrix, for the form's live filtering (JS)."""
    return {
        "regimenes": {r.code: [r.description, r.fisica, r.moral] for r in REGIMENES_FISCALES.values()},
        "usos": {u.code: [u.description, u.fisica, u.moral, sorted(u.regimenes)]
                 for u in USOS_CFDI.values() if u.code not in ("CP01", "CN01")},
        "capital": _CAPITAL.pattern,
    }
