"""Finkok (SOAP 1.1): stamp, cancel, SAT status, ping. Wire format: PROTOCOLS.md §1.

Business errors come back as HTTP 200 with ``Incidencias`` (stamp) or ``CodEstatus`` text (cancel); server
crashes as HTTP 500 with a ``senv:Fault``. A second ``stamp`` of the same sealed XML answers incidence 307
with the earlier stamp, which we return as ``already_stamped``; when Finkok answers 307 without the data
(it can, right after the first stamp) we ask again, then use ``stamped`` to recover it.
"""

from __future__ import annotations

import base64
import time
from decimal import Decimal

import requests
from cryptography.hazmat.primitives import serialization
from django.conf import settings

from . import sat_status, soap
from .base import (
    CANCELLED,
    HELD,
    IN_PROCESS,
    REFUSED,
    REJECTED,
    CancelResult,
    Pac,
    PacError,
    StampResult,
    StatusResult,
    check_cancel_request,
    excerpt,
    malformed,
    require_credentials,
    stamp_result_from_xml,
    xml_with_declaration,
)

PROVIDER = "Finkok"
URLS = {"test": "https://demo-facturacion.finkok.com", "production": "https://facturacion.finkok.com"}
STAMP_NS = "http://facturacion.finkok.com/stamp"
CANCEL_NS = "http://facturacion.finkok.com/cancel"
UTILITIES_NS = "http://facturacion.finkok.com/utilities"
VIEWS_NS = "apps.services.soap.core.views"

# (message, permanent). Permanent = resending the same XML cannot succeed until someone fixes something.
STAMP_ERRORS: dict[str, tuple[str, bool]] = {
    "300": ("El usuario o la contraseña de Finkok son inválidos. Revisa la configuración del PAC.", True),
    "301": ("El XML está mal formado.", True),
    "302": ("El sello del comprobante está mal formado o es inválido.", True),
    "303": ("El sello no corresponde al emisor.", True),
    "304": ("El certificado (CSD) está revocado o caduco.", True),
    "305": ("La fecha de emisión está fuera de la vigencia del CSD.", True),
    "306": ("El certificado no es de tipo CSD (parece una e.firma).", True),
    "307": ("El CFDI ya tenía un timbre previo.", False),
    "308": ("El certificado no fue expedido por el SAT.", True),
    "401": ("Fecha y hora de generación fuera de rango: el comprobante tiene más de 72 horas o una fecha futura.",
            True),
    "402": ("El RFC del emisor no se encuentra en el régimen de contribuyentes del SAT.", True),
    "403": ("La fecha de emisión debe ser posterior a 2012.", True),
    "501": ("Autenticación no válida con Finkok. Revisa la configuración del PAC.", True),
    "701": ("El cliente o el RFC emisor está suspendido en Finkok.", True),
    "702": ("El RFC emisor no está registrado en la cuenta de Finkok.", True),
    "703": ("La cuenta de Finkok está suspendida.", True),
    "704": ("Error con la contraseña de la llave privada.", True),
    "705": ("La estructura del XML es inválida.", True),
    "706": ("Socio inválido en Finkok.", True),
    "707": ("El XML ya contiene un timbre fiscal digital.", True),
    "708": ("Finkok no pudo conectarse con el SAT. Reintentaremos en unos minutos.", False),
    "709": ("Finkok no pudo generar el sello del SAT. Reintentaremos en unos minutos.", False),
    "711": ("Error con el certificado del emisor.", True),
    "712": ("El número de certificado no corresponde al certificado.", True),
    "718": ("Se agotaron los timbres de la cuenta de Finkok. Compra más timbres y vuelve a intentar.", True),
    "719": ("El RFC no corresponde al CSD registrado en Finkok.", True),
    "720": ("No hay un CSD activo registrado en Finkok.", True),
    "738": ("El XML tiene errores en schemaLocation, espacios de nombres o prefijos.", True),
}

CANCEL_STATUS: dict[str, tuple[str, str]] = {
    "201": (IN_PROCESS, "Solicitud de cancelación recibida por el SAT."),
    "202": (IN_PROCESS, "El CFDI ya estaba cancelado o con una solicitud previa."),
    "203": (REJECTED, "El folio fiscal no corresponde al emisor."),
    "204": (REJECTED, "El CFDI no aplica para cancelación."),
    "206": (REJECTED, "El CFDI no corresponde al sector primario."),
    "207": (REJECTED, "El motivo de cancelación no es válido."),
    "208": (REJECTED, "El folio de sustitución no es válido."),
    "209": (REJECTED, "El folio de sustitución no se requiere para este motivo."),
    "210": (REJECTED, "La fecha de solicitud es posterior a la fecha de declaración."),
    "211": (REJECTED, "Se excedió el plazo para cancelar la factura global."),
    "212": (REJECTED, "La relación con el folio de sustitución no es válida o no existe."),
    "no_cancelable": (REJECTED, "El CFDI no es cancelable: tiene documentos relacionados vigentes."),
}


# Incidences that refuse the request as a whole, whatever the document: the account, the credentials, or
# Finkok's own link to SAT. Finkok answered and made no stamp, so another PAC may be asked (failover).
REFUSED_CODES = {"300", "501", "701", "702", "703", "706", "708", "709", "718", "719", "720"}


def stamp_error(code: str, text: str, raw) -> PacError:
    """Turn an incidence into a PacError; SAT matrix codes (CFDI40xxx) are always the document's fault."""
    code = (code or "").strip()
    if code in STAMP_ERRORS:
        message, permanent = STAMP_ERRORS[code]
    elif code.upper().startswith(("CFDI40", "CFDI33", "CRP", "CP")):
        message, permanent = (text or "El SAT rechazó el comprobante."), True
    else:
        # An unknown business code on HTTP 200: Finkok looked at the document and refused it.
        message, permanent = (text or "Finkok rechazó el comprobante."), True
    outcome = REFUSED if code in REFUSED_CODES else HELD if code == "307" else None
    return PacError(code or "unknown", f"Finkok: {message}" if not message.startswith("Finkok") else message,
                    permanent=permanent, raw=raw, outcome=outcome)


class FinkokPac(Pac):
    name = "finkok"
    label = PROVIDER

    @property
    def concurrent_stamps(self) -> int:
        return int(getattr(settings, "PAC_STAMP_CONCURRENCY", 4))

    def __init__(self, *, username: str, password: str, environment: str = "test", base_url: str | None = None,
                 retry_307_delay: float = 0.2, retry_307_attempts: int = 3):
        self.username = username
        self.password = password
        self.environment = environment
        self.base_url = (base_url or URLS.get(environment, URLS["test"])).rstrip("/")
        self.retry_307_delay = retry_307_delay
        self.retry_307_attempts = retry_307_attempts
        self.session = requests.Session()

    @property
    def circuit_key(self) -> str:
        return f"{self.name}:{self.base_url}"

    def _url(self, service: str) -> str:
        # The WSDL's soap:address is the path without ".wsdl" (PHP SoapClient posts there).
        return f"{self.base_url}/servicios/soap/{service}"

    def _creds(self) -> list[tuple[str, str]]:
        require_credentials(PROVIDER, self.password)
        return [("username", self.username), ("password", self.password)]

    # --- stamp ---------------------------------------------------------------------------------------

    def stamp(self, sealed_xml: bytes) -> StampResult:
        xml_b64 = base64.b64encode(sealed_xml).decode("ascii")  # once: twice gives 705
        for attempt in range(self.retry_307_attempts + 1):
            result, error = self._stamp_call("stamp", xml_b64)
            if result is not None:
                return result
            if error.code != "307":
                raise error
            if attempt < self.retry_307_attempts:
                time.sleep(self.retry_307_delay)
        # 307 but the earlier stamp never came back: recover it explicitly.
        result, recover_error = self._stamp_call("stamped", xml_b64)
        if result is not None:
            return StampResult(**{**result.__dict__, "already_stamped": True})
        raise PacError(
            "307",
            "Finkok indica que el CFDI ya fue timbrado pero aún no devuelve el timbre. Reintentaremos en unos "
            "minutos para recuperarlo (se conservará el mismo folio fiscal).",
            permanent=False,
            raw=recover_error.raw if recover_error else error.raw,
            outcome=HELD,
        )

    def find_stamp(self, sealed_xml: bytes) -> StampResult | None:
        """``stamped`` recovers a stamp and never makes one: 603 means Finkok holds none for this XML."""
        result, error = self._stamp_call("stamped", base64.b64encode(sealed_xml).decode("ascii"))
        if result is not None:
            return StampResult(**{**result.__dict__, "already_stamped": True})
        if error.code == "603":
            return None
        raise error

    def _stamp_call(self, operation: str, xml_b64: str) -> tuple[StampResult | None, PacError | None]:
        body = soap.envelope(operation, STAMP_NS, [("xml", xml_b64), *self._creds()])
        root = soap.call(PROVIDER, self._url("stamp"), f'"{operation}"', body, session=self.session)
        node = soap.first(root, f"{operation}Result")
        if node is None:
            raise malformed(PROVIDER, soap.etree.tostring(root), f"sin {operation}Result")
        xml_text = soap.text(node, "xml")
        uuid = soap.text(node, "UUID")
        codes = [soap.text(i, "CodigoError") for i in soap.children(node, "Incidencia")]
        cod_estatus = soap.text(node, "CodEstatus")
        already = "307" in codes or "previamente" in cod_estatus.lower()
        if xml_text and (uuid or "TimbreFiscalDigital" in xml_text):
            # Success may still carry incidences: decide on the data, not on Incidencias being empty.
            return stamp_result_from_xml(xml_with_declaration(xml_text), already_stamped=already,
                                         provider=PROVIDER), None
        raw = excerpt(soap.etree.tostring(root))
        incidences = soap.children(node, "Incidencia")
        if incidences:
            first = incidences[0]
            return None, stamp_error(soap.text(first, "CodigoError"), soap.text(first, "MensajeIncidencia"), raw)
        if operation == "stamped":
            return None, PacError("603", "Finkok: el CFDI no contiene un timbre previo.", permanent=False, raw=raw)
        fault = soap.text(node, "faultstring")
        if fault or cod_estatus:
            return None, PacError(soap.text(node, "faultcode") or "unknown",
                                  f"Finkok no timbró el comprobante: {fault or cod_estatus}", permanent=True, raw=raw)
        return None, malformed(PROVIDER, raw, "sin timbre ni incidencias")

    # --- cancel --------------------------------------------------------------------------------------

    def cancel(self, *, uuid: str, motivo: str, replacement_uuid: str | None = None, certificate) -> CancelResult:
        check_cancel_request(uuid, motivo, replacement_uuid)
        uuid = uuid.upper()
        # cer: base64 of the PEM certificate; key: base64 of the PEM PKCS#8 key, sent unencrypted over TLS
        # as Odoo does (Finkok also accepts it re-encrypted with the account password).
        cer_pem = certificate.info.certificate.public_bytes(serialization.Encoding.PEM)
        key_pem = certificate.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        folio = replacement_uuid.upper() if replacement_uuid else ""
        children = (
            f'<ns:UUIDS><v:UUID xmlns:v="{VIEWS_NS}" UUID="{uuid}" FolioSustitucion="{folio}" '
            f'Motivo="{soap.escape(motivo)}"/></ns:UUIDS>'
            f"<ns:username>{soap.escape(self.username)}</ns:username>"
            f"<ns:password>{soap.escape(self.password)}</ns:password>"
            f"<ns:taxpayer_id>{soap.escape(certificate.rfc)}</ns:taxpayer_id>"
            f"<ns:cer>{base64.b64encode(cer_pem).decode()}</ns:cer>"
            f"<ns:key>{base64.b64encode(key_pem).decode()}</ns:key>"
            f"<ns:store_pending>false</ns:store_pending>"
        )
        root = soap.call(PROVIDER, self._url("cancel"), '"cancel"', soap.envelope("cancel", CANCEL_NS, children),
                         session=self.session)
        node = soap.first(root, "cancelResult")
        if node is None:
            raise malformed(PROVIDER, soap.etree.tostring(root), "sin cancelResult")
        raw = excerpt(soap.etree.tostring(root))
        acuse_text = soap.text(node, "Acuse")
        acuse = acuse_text.encode("utf-8") if acuse_text else None
        folios = soap.children(node, "Folio")
        if not folios:
            raise cancel_request_error(soap.text(node, "CodEstatus"), raw)
        folio_node = next((f for f in folios if soap.text(f, "UUID").upper() == uuid), folios[0])
        code = soap.text(folio_node, "EstatusUUID")
        detail = soap.text(folio_node, "EstatusCancelacion")
        return cancel_result(uuid, code, detail, acuse, raw)

    # --- status and ping -----------------------------------------------------------------------------

    def status(self, *, uuid: str, emisor_rfc: str, receptor_rfc: str, total) -> StatusResult:
        children = [
            *self._creds(),
            ("taxpayer_id", emisor_rfc),
            ("rtaxpayer_id", receptor_rfc),
            ("uuid", uuid.upper()),
            ("total", f"{Decimal(str(total)):.2f}"),
        ]
        root = soap.call(PROVIDER, self._url("cancel"), '"get_sat_status"',
                         soap.envelope("get_sat_status", CANCEL_NS, children), session=self.session)
        node = soap.first(root, "get_sat_statusResult")
        if node is None:
            raise malformed(PROVIDER, soap.etree.tostring(root), "sin get_sat_statusResult")
        sat = soap.first(node, "sat")
        error = soap.text(node, "error")
        if sat is None or not len(sat):
            raw = excerpt(soap.etree.tostring(root))
            if error:
                raise cancel_request_error(error, raw)
            raise malformed(PROVIDER, raw, "sin estado del SAT")
        return sat_status.status_from_acuse(sat)

    def ping(self) -> str:
        body = soap.envelope("datetime", UTILITIES_NS, [*self._creds(), ("zipcode", "")])
        root = soap.call(PROVIDER, self._url("utilities"), '"datetime"', body, session=self.session)
        node = soap.first(root, "datetimeResult")
        if node is None:
            raise malformed(PROVIDER, soap.etree.tostring(root), "sin datetimeResult")
        error = soap.text(node, "error")
        if error:
            raise cancel_request_error(error, excerpt(soap.etree.tostring(root)))
        env = "producción" if self.environment == "production" else "pruebas"
        return f"Conexión correcta con Finkok ({env}). Hora del servidor: {soap.text(node, 'datetime')}."


def cancel_result(uuid: str, code: str, detail: str, acuse: bytes | None, raw) -> CancelResult:
    lowered = detail.lower()
    if code == "205":
        raise PacError("205", "El SAT aún no registra el CFDI (es común justo después de timbrar). "
                       "Reintentaremos la cancelación en unos minutos.", permanent=False, raw=raw)
    if "cancelado" in lowered and "no" not in lowered.split():
        return CancelResult(uuid, CANCELLED, code, detail, acuse)
    if "rechaz" in lowered:
        return CancelResult(uuid, REJECTED, code, detail, acuse)
    if code in CANCEL_STATUS:
        status, message = CANCEL_STATUS[code]
        return CancelResult(uuid, status, code, message, acuse)
    if code in ("708",):
        raise PacError(code, "Finkok no pudo conectarse con el SAT. Reintentaremos en unos minutos.",
                       permanent=False, raw=raw)
    return CancelResult(uuid, REJECTED, code or "unknown", detail or "El SAT rechazó la solicitud de cancelación.",
                        acuse)


def cancel_request_error(text: str, raw) -> PacError:
    """Request-level errors of the cancel service come as free text (English or Spanish)."""
    lowered = (text or "").lower()
    if "username or password" in lowered or "usuario o contraseña" in lowered:
        return PacError("300", "El usuario o la contraseña de Finkok son inválidos. Revisa la configuración del "
                        "PAC.", permanent=True, raw=raw)
    if "foliosustitucion" in lowered.replace(" ", ""):
        return PacError("208", "El motivo 01 requiere el folio fiscal (UUID) del CFDI que sustituye al "
                        "cancelado.", permanent=True, raw=raw)
    if "no encontrado" in lowered:
        return PacError("205", "El SAT aún no registra el CFDI. Reintentaremos en unos minutos.",
                        permanent=False, raw=raw)
    if "708" in lowered or "intermit" in lowered:
        return PacError("708", "Finkok no pudo conectarse con el SAT. Reintentaremos en unos minutos.",
                        permanent=False, raw=raw)
    if "passphrase" in lowered or "padding" in lowered or "certificado" in lowered:
        return PacError("711", f"Finkok rechazó el certificado o la llave: {text}", permanent=True, raw=raw)
    return PacError("unknown", f"Finkok rechazó la solicitud: {text or 'sin detalle'}", permanent=True, raw=raw)
