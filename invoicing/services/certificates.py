"""Install a merchant's CSD: checked by the engine, stored encrypted, the previous one deactivated."""

from django.db import transaction

from infra.events import record_event
from invoicing.cfdi.csd import load_csd
from invoicing.models import Certificate
from tickets.models import Merchant


@transaction.atomic
def certificate_install(*, merchant: Merchant, cer: bytes, key: bytes, password: str, actor: str = "") -> Certificate:
    """Raises invoicing.cfdi.csd.CsdError (Spanish message) for a wrong password, a FIEL given instead of a
    CSD, an expired certificate, a key that does not match, or an RFC that is not the merchant's."""
    csd = load_csd(cer, key, password, expected_rfc=merchant.rfc)
    info = csd.info
    existing = merchant.certificates.filter(number=info.no_certificado).first()
    Certificate.objects.filter(merchant=merchant, is_active=True).exclude(
        pk=getattr(existing, "pk", None)).update(is_active=False)
    if existing:
        if not existing.is_active:
            existing.is_active = True
            existing.save(update_fields=["is_active"])
        return existing
    certificate = Certificate.objects.create(
        merchant=merchant, cer_der=info.der, key_der=key, password=password, number=info.no_certificado,
        rfc=info.rfc, legal_name=info.legal_name, valid_from=info.valid_from, valid_to=info.valid_to,
    )
    record_event(merchant_id=merchant.pk, entity="certificate", object_id=certificate.pk, from_status="",
                 to_status="active", actor=actor, reason=f"CSD {info.no_certificado} instalado")
    return certificate
