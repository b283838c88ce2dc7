"""The merchant's aviso de privacidad for its shoppers: its own text, or a default one built from its data.

The portal collects RFC, name, régimen, postal code and email addresses, so the merchant (the responsable) owes
its shoppers an aviso de privacidad (Ley Federal de Protección de Datos Personales en Posesión de los
Particulares): who is responsible and where, which data and for what, to whom they go, how to exercise the
ARCO rights and revoke consent, and how changes are announced. The default says that for what this product
does; a merchant that does more with the data writes its own in the back office.
"""

from __future__ import annotations

import re

from tickets.models import Merchant

DEFAULT_TEMPLATE = """\
{legal_name} (RFC {rfc}), con domicilio en {address}, es responsable del tratamiento de los datos personales \
que nos proporcionas en este sitio para facturar tus compras, en los términos de la Ley Federal de \
Protección de Datos Personales en Posesión de los Particulares.

Datos que tratamos. Tu RFC, tu nombre o razón social, tu régimen fiscal, el código postal de tu domicilio \
fiscal, el uso que darás a la factura y los correos electrónicos donde quieres recibirla; si resides en el \
extranjero, tu país de residencia fiscal y tu número de registro tributario. Si subes tu Constancia de \
Situación Fiscal, solo la leemos para llenar el formulario y no la guardamos; subirla es opcional. No tratamos \
datos personales sensibles.

Para qué los usamos. Para emitir la factura electrónica (CFDI) de tu compra, timbrarla con un proveedor de \
certificación autorizado por el SAT, enviártela por correo, permitirte descargarla, reenviarla o corregir tus \
datos, y cumplir nuestras obligaciones fiscales, entre ellas conservar los comprobantes durante el plazo que \
marca el Código Fiscal de la Federación. Son finalidades necesarias para darte la factura que pides. No usamos \
tus datos para publicidad ni para ninguna otra finalidad.

Con quién los compartimos. Con el Servicio de Administración Tributaria (SAT) y con el proveedor de \
certificación (PAC) que timbra la factura, porque la ley lo exige para que sea válida; esas transferencias no \
requieren tu consentimiento. Los proveedores que alojan este sitio y envían los correos los tratan solo por \
nuestra cuenta y con confidencialidad. No vendemos ni compartimos tus datos con nadie más.

Cookies. Este sitio usa una cookie de sesión, necesaria para recordar los tickets que vas a facturar. Si \
marcas «Recordar mis datos en este dispositivo», guardamos tus datos fiscales en tu navegador durante un año \
en una cookie firmada; puedes borrarla en cualquier momento desde tu navegador.

Tus derechos. Puedes acceder a tus datos, rectificarlos, cancelarlos u oponerte a su tratamiento (derechos \
ARCO), así como revocar tu consentimiento, {how}. Indica tu nombre, tu RFC, qué solicitas y cómo responderte; \
te responderemos en un plazo máximo de 20 días hábiles. Los datos de una factura ya emitida forman parte de un \
comprobante fiscal que debemos conservar: para corregirlos se emite una factura nueva.

Cambios a este aviso. Cualquier cambio a este aviso de privacidad lo publicaremos en esta misma página."""


def default_privacy_notice(merchant: Merchant) -> str:
    """The default aviso, with the merchant's name, RFC, address and contact."""
    contact = merchant.customer_contact
    how = (f"escribiendo o llamando a {contact}" if contact
           else "en cualquiera de nuestras sucursales o por los medios de contacto que aparecen en tu ticket")
    return DEFAULT_TEMPLATE.format(legal_name=merchant.legal_name, rfc=merchant.rfc,
                                   address=merchant.address or "el que aparece en tus tickets de compra", how=how)


def privacy_notice(merchant: Merchant) -> str:
    """The text shoppers read: the merchant's own, or the default."""
    return merchant.privacy_notice.strip() or default_privacy_notice(merchant)


def _comparable(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


def is_default_notice(text: str, merchant: Merchant) -> bool:
    """Whether ``text`` is the default aviso as it reads for ``merchant`` (whitespace aside): kept as "use the
    default", so it follows the merchant's name and contact when they change."""
    return _comparable(text) == _comparable(default_privacy_notice(merchant))
