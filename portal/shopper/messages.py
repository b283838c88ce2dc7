"""The lower layers' messages in the shopper's language.

The receptor rules (invoicing/cfdi, pure Python: no Django, no gettext), the ticket eligibility verdicts and the
services' errors speak Spanish, and the API and the back office show them as they are. A shopper who chose
English reads them through ``shopper_message``: each Spanish template below is a msgid of the portal's
catalogue (locale/en), and a message that matches one is rebuilt from its English msgstr with the same values.
Codes never change; a message no template matches is shown as it came (Spanish), and
tests/portal/test_shop_english.py fails when a rule's message has no template here.
"""

from __future__ import annotations

import functools
import re
import string

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_noop as _

from tickets import eligibility

TEMPLATES = [
    # invoicing/cfdi/receptor.py and rfc.py (who="tu RFC")
    _("Escribe tu RFC: 13 caracteres si eres persona física, 12 si es una empresa (persona moral)."),
    _("Ese es el RFC genérico de público en general: para facturar necesitas tu propio RFC (o, si resides en el "
       "extranjero, marca «Soy extranjero»)."),
    _("Tu RFC «{rfc}» no tiene un formato válido: son 4 letras (persona física) o 3 (persona moral), 6 dígitos de "
       "la fecha (AAMMDD) y 3 caracteres de homoclave."),
    _("La fecha contenida en tu RFC «{rfc}» ({date}) no es una fecha válida."),
    _("El dígito verificador de tu RFC «{rfc}» no coincide; revisa que esté bien escrito (algunos RFC asignados "
       "por el SAT no cumplen esta regla)."),
    _("Escribe tu nombre o razón social como aparece en tu Constancia de Situación Fiscal."),
    _("El nombre no puede llevar «|». Escríbelo como aparece en tu Constancia de Situación Fiscal."),
    _("El nombre lleva caracteres de control que el SAT no admite. Escríbelo como aparece en tu Constancia de "
       "Situación Fiscal."),
    _("El nombre o razón social admite hasta {max} caracteres."),
    _("El nombre «PUBLICO EN GENERAL» solo se usa con el RFC XAXX010101000."),
    _("Escribe tu nombre o razón social, sin el régimen de capital."),
    _("Quitamos «{removed}» del nombre: desde CFDI 4.0 el SAT pide la razón social sin el régimen de capital, tal "
       "como en la Constancia de Situación Fiscal."),
    _("El nombre lleva el régimen de capital «{capital}»: desde CFDI 4.0 el SAT pide la razón social sin él."),
    _("Elige tu régimen fiscal."),
    _("El régimen fiscal «{code}» no existe en el catálogo del SAT; elige uno de la lista."),
    _("Con RFC genérico (público en general o extranjero), el régimen fiscal debe ser 616 «Sin obligaciones "
       "fiscales»."),
    _("El régimen {code} «{description}» no corresponde a una persona {persona}. Elige otro de la lista."),
    _("Elige el uso de la factura."),
    _("El uso «{code}» no existe en el catálogo del SAT; elige uno de la lista."),
    _("El uso {code} «{description}» es solo para recibos de pago o de nómina."),
    _("Con RFC de extranjero el uso del CFDI debe ser S01 «Sin efectos fiscales»."),
    _("El uso {code} «{description}» no es para una persona {persona}. Elige otro uso de la lista (por ejemplo "
       "S01 «Sin efectos fiscales»)."),
    _("El uso {code} «{description}» no se permite con el régimen {regimen} «{regimen_description}». Elige otro "
       "uso de la lista (por ejemplo S01 «Sin efectos fiscales») o revisa tu régimen."),
    _("El código postal de tu domicilio fiscal tiene 5 dígitos, por ejemplo 06600."),
    _("Con RFC genérico, el código postal del receptor debe ser el del lugar de expedición."),
    _("El código postal {code} no existe en el catálogo del SAT. Escribe el de tu domicilio fiscal, como aparece "
       "en tu Constancia de Situación Fiscal."),
    _("El país de residencia fiscal solo se indica con el RFC de extranjero XEXX010101000."),
    _("El número de registro tributario extranjero solo se indica con el RFC de extranjero XEXX010101000."),
    _("Con RFC de extranjero, elige tu país de residencia fiscal."),
    _("La residencia fiscal de un extranjero no puede ser México: si resides en México, factura con tu propio "
       "RFC."),
    _("El país «{country}» no existe en el catálogo del SAT; elige uno de la lista."),
    _("Con RFC de extranjero, escribe tu número de registro tributario (tax id) de tu país de residencia."),
    _("El número de registro tributario admite hasta {max} caracteres."),
    _("El número de registro tributario no puede llevar «|» ni caracteres de control."),
    _("El número de registro tributario de {country} lleva {format} (catálogo c_Pais del SAT)."),
    # invoicing/services/receptor.py (emails)
    _("Escribe hasta {max} correos."),
    _("«{email}» no es un correo válido; revisa que esté bien escrito."),
    # invoicing/services/issue.py and late_request.py, as the confirmation page may show them
    _("Indica al menos un ticket para facturar."),
    _("Una factura puede incluir hasta {max} tickets."),
    _("Los tickets están cambiando en este momento; intenta de nuevo."),
    _("No encontramos uno de los tickets."),
    _("El ticket {number} ya está incluido en la factura global."),
    _("El ticket {number} ya fue facturado."),
    _("Los tickets están en monedas distintas ({currencies}): un CFDI lleva una sola moneda y un solo tipo de "
       "cambio. Factúralos por separado, una factura por moneda."),
    _("Una factura admite hasta {max} conceptos y estos tickets suman {count}: factúralos en varias facturas."),
    _("Los tickets en {currency} se vendieron con tipos de cambio distintos ({rates}): un CFDI lleva un solo tipo "
       "de cambio. Factúralos por separado."),
    # invoicing/services/reissue.py ("corregir mis datos")
    _("Ese RFC no es el de esta factura: escribe el RFC con el que facturaste."),
    # tickets/eligibility.py MESSAGES (the live templates are added below; these mark them for the catalogue)
    _("El ticket {number} se puede facturar."),
    _("El ticket {number} ya estaba en la factura global del comercio; al facturarlo, el comercio lo retira de esa "
       "factura global. Puedes continuar."),
    _("El ticket {number} fue cancelado en la tienda (por ejemplo, por una devolución) y no se puede facturar."),
    _("El plazo para facturar el ticket {number} venció el {expired_on}. Ya no es posible facturarlo en línea; si "
      "tienes dudas, comunícate con {contact}."),
    _("El ticket {number} ya se incluyó en la factura global del comercio (la que emite por las ventas al público "
      "en general) y el comercio no emite facturas individuales después de eso, por lo que ya no se puede "
      "facturar en línea. Si necesitas tu factura, comunícate con {contact}."),
]

# Values the templates above carry that are words, not data.
VALUES = [
    _("moral (RFC de 12 caracteres)"),
    _("física (RFC de 13 caracteres)"),
    _("9 dígitos"),
    _("el comercio"),  # whom to contact when the merchant left no contact (Merchant.contact_phrase)
    _("la tienda"),
]


def _all_templates() -> list[str]:
    return list(dict.fromkeys([*TEMPLATES, *(str(m) for m in eligibility.MESSAGES.values())]))


@functools.lru_cache(maxsize=1)
def _patterns() -> list[tuple[re.Pattern, str]]:
    out = []
    for template in _all_templates():
        regex, seen = [], set()
        for literal, name, _spec, _conv in string.Formatter().parse(template):
            regex.append(re.escape(literal))
            if name is not None:
                regex.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
                seen.add(name)
        out.append((re.compile("".join(regex), re.DOTALL), template))
    return out


def is_default_language() -> bool:
    return (translation.get_language() or settings.LANGUAGE_CODE) == settings.LANGUAGE_CODE


def shopper_message(message) -> str:
    """``message`` (a lower layer's Spanish message) in the active language; as it is if Spanish is active or
    no template matches."""
    message = str(message)
    if is_default_language():
        return message
    for pattern, template in _patterns():
        match = pattern.fullmatch(message)
        if match:
            values = {k: gettext(v) if v in VALUES else v for k, v in match.groupdict().items()}
            try:
                return gettext(template).format(**values)
            except (KeyError, IndexError, ValueError):  # a translation with a broken placeholder: keep Spanish
                return message
    return message


def is_translated(message) -> bool:
    """For tests: whether ``message`` matches a template (so English shoppers read it in English)."""
    return any(p.fullmatch(str(message)) for p, _ in _patterns())
