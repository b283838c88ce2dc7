"""The stamping-provider interface: what the pipeline calls, whatever PAC sits behind it.

A provider answers with small frozen results or raises PacError. ``PacError.permanent`` tells the caller
whether resending the same sealed XML can ever succeed without a human fixing something (bad document,
bad credentials, no stamps left: True) or whether to retry later (network, timeout, 5xx, provider or SAT
down, unreadable answer: False). Retrying is always safe: the same sealed XML never gets a second UUID
(PACs answer 307 "timbre previo" with the earlier stamp).

``PacError.outcome`` says what the failed request may have left at the PAC, which decides whether the
document may go to *another* PAC (failover; the table is in docs/pac.md): NOT_SENT (the PAC never saw it:
DNS, connection refused, 503 from its gateway) and REFUSED (the PAC answered and refused the request as a
whole: credentials, account, its link to SAT) certainly made no stamp; UNKNOWN (the answer was lost: read
timeout, dropped connection, 5xx, garbage) may have; HELD means the PAC says it stamped but did not hand the
stamp over (307 without data); INVALID means the document itself is refused, by any PAC. The adapters decide
it from the transport and the wire format, nowhere else.
"""

from __future__ import annotations

import logging
import re
import zoneinfo
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import requests
import urllib3.exceptions
from django.conf import settings
from lxml import etree

log = logging.getLogger("invoicing.pac")

CFDI_NS = "http://www.sat.gob.mx/cfd/4"
TFD_NS = "http://www.sat.gob.mx/TimbreFiscalDigital"
# FechaTimbrado is written in Zona Centro time without an offset (RULES.md §4).
ZONA_CENTRO = zoneinfo.ZoneInfo("America/Mexico_City")

CANCELLED = "cancelled"
IN_PROCESS = "in_process"
REJECTED = "rejected"


@dataclass(frozen=True)
class StampResult:
    uuid: str  # upper case
    stamped_xml: bytes
    stamped_at: datetime  # aware
    sat_certificate_number: str
    sello_sat: str
    rfc_prov_certif: str
    already_stamped: bool = False


@dataclass(frozen=True)
class CancelResult:
    uuid: str
    status: str  # CANCELLED | IN_PROCESS | REJECTED
    code: str  # SAT's EstatusUUID (201, 202…) or the provider's code
    message: str  # Spanish
    acuse: bytes | None = None


@dataclass(frozen=True)
class StatusResult:
    estado: str  # "Vigente" | "Cancelado" | "No Encontrado"
    es_cancelable: str = ""  # "Cancelable sin aceptación" | "Cancelable con aceptación" | "No cancelable"
    estatus_cancelacion: str = ""  # "", "En proceso", "Cancelado sin aceptación", "Plazo vencido"…
    codigo_estatus: str = ""  # "S - Comprobante obtenido satisfactoriamente." …
    validacion_efos: str = ""


# What a failed stamp request left behind at the PAC (PacError.outcome).
NOT_SENT = "not_sent"  # no stamp: the PAC never saw the request (DNS, refused, connect timeout, 503)
REFUSED = "refused"  # no stamp: the PAC answered and refused the request as a whole (auth, account, SAT link)
UNKNOWN = "unknown"  # maybe stamped: the answer was lost (read timeout, dropped connection, 5xx, garbage)
HELD = "held"  # stamped, but the stamp did not come back (307 "timbre previo" without the data)
INVALID = "invalid"  # the document is refused (CFDI40xxx, 30x, 401…): any PAC would refuse it
OUTCOMES = (NOT_SENT, REFUSED, UNKNOWN, HELD, INVALID)
NOT_STAMPED = (NOT_SENT, REFUSED)  # certainly not stamped by this request


class PacError(Exception):
    """A provider refused or failed. ``message`` is Spanish and readable by a merchant.

    ``outcome`` defaults to the safe reading: a transient error may have stamped (UNKNOWN), a permanent one is
    the document's fault (INVALID). Adapters say NOT_SENT or REFUSED only where the wire proves it.
    """

    def __init__(self, code: str, message: str, *, permanent: bool, raw: str | bytes = "",
                 outcome: str | None = None):
        self.code = str(code)
        self.message = message
        self.permanent = permanent
        self.outcome = outcome or (INVALID if permanent else UNKNOWN)
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown PAC outcome {self.outcome!r}")
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace")
        self.raw = (raw or "")[:2000]
        super().__init__(f"{self.code}: {message}")

    def __repr__(self):
        return (f"PacError(code={self.code!r}, permanent={self.permanent}, outcome={self.outcome}, "
                f"message={self.message!r})")

    @property
    def service_down(self) -> bool:
        """The PAC itself is failing (network, 5xx, its link to SAT), not this merchant's account or document:
        what the circuit breaker counts."""
        return self.outcome in (NOT_SENT, UNKNOWN) or (self.outcome == REFUSED and not self.permanent)


class Pac:
    """Base class of every provider. Subclasses implement the four operations."""

    name = "base"
    label = "PAC"  # how people call it (Spanish pages and events)
    concurrent_stamps = 1  # how many of a batch's documents stamp_many sends at once

    @property
    def circuit_key(self) -> str:
        """Which service this instance talks to: the circuit breaker's key (every merchant on it shares it)."""
        return self.name

    def find_stamp(self, sealed_xml: bytes) -> StampResult | None:
        """The stamp this PAC holds for ``sealed_xml``, or None if it holds none, without ever making one.

        Used to look for a late stamp after a failover (docs/pac.md). A PAC that cannot be asked without
        stamping raises NotImplementedError.
        """
        raise NotImplementedError

    def stamp(self, sealed_xml: bytes) -> StampResult:
        raise NotImplementedError

    def stamp_many(self, sealed_xmls: list[bytes]) -> list[StampResult | PacError]:
        """Stamp a batch: one outcome per document, in order; a PacError is that document's alone.

        Network providers send ``concurrent_stamps`` requests at once: a PAC answers in about a second, so a
        batch of 50 sent one by one would hold a worker for a minute.
        """
        def one(xml: bytes) -> StampResult | PacError:
            try:
                return self.stamp(xml)
            except PacError as exc:
                return exc

        width = min(self.concurrent_stamps, len(sealed_xmls))
        if width <= 1:
            return [one(xml) for xml in sealed_xmls]
        with ThreadPoolExecutor(width, thread_name_prefix=f"pac-{self.name}") as pool:
            return list(pool.map(one, sealed_xmls))

    def cancel(self, *, uuid: str, motivo: str, replacement_uuid: str | None = None, certificate) -> CancelResult:
        """``certificate`` is the engine's loaded CSD (invoicing.cfdi.csd.Csd) of the emisor."""
        raise NotImplementedError

    def status(self, *, uuid: str, emisor_rfc: str, receptor_rfc: str, total) -> StatusResult:
        raise NotImplementedError

    def ping(self) -> str:
        """Check that the provider answers and accepts the credentials; returns a Spanish sentence."""
        raise NotImplementedError


# --- helpers shared by the adapters -----------------------------------------------------------------


def timeout() -> float:
    return float(getattr(settings, "PAC_TIMEOUT_SECONDS", 30))


def never_connected(exc: BaseException) -> bool:
    """True when the request never left this machine: DNS failure, connection refused, connect timeout, TLS
    handshake. Anything later (a reset or a timeout while reading) may come after the PAC acted on it."""
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
        return True
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        # urllib3: NameResolutionError and a refused or timed-out connect are NewConnectionError/ConnectTimeoutError.
        if isinstance(current, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError):
            return True
        pending.extend([*current.args, getattr(current, "reason", None), current.__cause__, current.__context__])
    return False


def transport_error(provider: str, exc: Exception, *, sent: bool = True) -> PacError:
    """Network trouble is never the document's fault: always transient. Whether the PAC may have stamped
    depends on when it happened: before the connection was made, certainly not (``sent=False`` says the
    failed call was not the stamp request itself, e.g. SW's authentication); a read timeout or a connection
    lost after sending may come after the PAC stamped."""
    outcome = NOT_SENT if not sent or never_connected(exc) else UNKNOWN
    if isinstance(exc, requests.Timeout):
        return PacError(
            "timeout",
            f"{provider} no respondió a tiempo. Reintentaremos en unos minutos; si ya se había timbrado, "
            "obtendremos el mismo folio fiscal.",
            permanent=False,
            raw=str(exc),
            outcome=outcome,
        )
    if outcome == NOT_SENT:
        return PacError(
            "connection",
            f"No fue posible conectar con {provider}. Reintentaremos en unos minutos.",
            permanent=False,
            raw=str(exc),
            outcome=outcome,
        )
    return PacError(
        "connection_lost",
        f"Se perdió la conexión con {provider} antes de recibir su respuesta. Reintentaremos en unos minutos; si "
        "ya se había timbrado, obtendremos el mismo folio fiscal.",
        permanent=False,
        raw=str(exc),
        outcome=outcome,
    )


def server_error(provider: str, status: int, body: bytes | str) -> PacError:
    """A non-200 answer without a business result. 503 (a gateway with no server to hand the request to,
    maintenance) and 4xx other than the adapters' own (a path or method refused) reject the request before any
    processing; 500 and the other 5xx can come from a crash after the stamp was made (PROTOCOLS.md §1.1)."""
    before_processing = status == 503 or 400 <= status < 500
    return PacError(
        f"http_{status}",
        f"{provider} no está disponible (HTTP {status}). Reintentaremos en unos minutos." if before_processing
        else f"{provider} tuvo una falla interna (HTTP {status}). Reintentaremos en unos minutos.",
        permanent=False,
        raw=body,
        outcome=NOT_SENT if before_processing else UNKNOWN,
    )


def malformed(provider: str, body: bytes | str, what: str = "") -> PacError:
    return PacError(
        "malformed",
        f"{provider} envió una respuesta que no se pudo leer{(' (' + what + ')') if what else ''}. "
        "Reintentaremos en unos minutos.",
        permanent=False,
        raw=body,
    )


_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_blank_text=False)


def parse_xml(data: bytes | str) -> etree._Element:
    """Parse untrusted XML without entities or network access."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return etree.fromstring(data, parser=_SAFE_PARSER)


def parse_fecha_timbrado(value: str) -> datetime:
    """'2023-09-21T10:50:04' (Zona Centro, no offset) → aware datetime."""
    moment = datetime.fromisoformat(value.strip()[:19])
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZONA_CENTRO)
    return moment


def stamp_result_from_xml(stamped_xml: bytes, *, already_stamped: bool = False, provider: str = "El PAC") -> StampResult:
    """Read the TimbreFiscalDigital of a stamped CFDI into a StampResult."""
    try:
        root = parse_xml(stamped_xml)
    except etree.XMLSyntaxError as exc:
        raise malformed(provider, stamped_xml, "CFDI timbrado ilegible") from exc
    tfd = root.find(f"{{{CFDI_NS}}}Complemento/{{{TFD_NS}}}TimbreFiscalDigital")
    if tfd is None or not tfd.get("UUID"):
        raise malformed(provider, stamped_xml, "sin TimbreFiscalDigital")
    try:
        stamped_at = parse_fecha_timbrado(tfd.get("FechaTimbrado", ""))
    except ValueError as exc:
        raise malformed(provider, stamped_xml, "FechaTimbrado inválida") from exc
    return StampResult(
        uuid=tfd.get("UUID").upper(),
        stamped_xml=stamped_xml,
        stamped_at=stamped_at,
        sat_certificate_number=tfd.get("NoCertificadoSAT", ""),
        sello_sat=tfd.get("SelloSAT", ""),
        rfc_prov_certif=tfd.get("RfcProvCertif", ""),
        already_stamped=already_stamped,
    )


def xml_with_declaration(text: str) -> bytes:
    """Providers hand the stamped CFDI back as text; store UTF-8 bytes with a declaration."""
    data = text.strip().encode("utf-8")
    if not data.startswith(b"<?xml"):
        data = b'<?xml version="1.0" encoding="UTF-8"?>\n' + data
    return data


def excerpt(body: bytes | str, limit: int = 2000) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    return body[:limit]


MOTIVOS = {"01", "02", "03", "04"}
UUID_PATTERN = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"


def check_cancel_request(uuid: str, motivo: str, replacement_uuid: str | None) -> None:
    """Refuse, before any network call, what every PAC refuses (RULES.md §6)."""
    if not re.match(UUID_PATTERN, uuid or ""):
        raise PacError("UUID", f"El folio fiscal «{uuid}» no tiene el formato de un UUID.", permanent=True)
    if motivo not in MOTIVOS:
        raise PacError("207", f"El motivo de cancelación «{motivo}» no es válido: usa 01, 02, 03 o 04.",
                       permanent=True)
    if motivo == "01" and not replacement_uuid:
        raise PacError("208", "El motivo 01 requiere el folio fiscal (UUID) del CFDI que sustituye al cancelado.",
                       permanent=True)
    if motivo != "01" and replacement_uuid:
        raise PacError("209", "El folio de sustitución solo se usa con el motivo 01.", permanent=True)
    if replacement_uuid and not re.match(UUID_PATTERN, replacement_uuid):
        raise PacError("208", f"El folio de sustitución «{replacement_uuid}» no tiene el formato de un UUID.",
                       permanent=True)


def require_credentials(provider: str, password: str) -> None:
    if not password:
        raise PacError(
            "config",
            f"Falta configurar la contraseña (o el token) de {provider} en los datos del comercio.",
            permanent=True,
            outcome=NOT_SENT,
        )
