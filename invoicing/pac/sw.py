"""SW Sapien (SW smarter web, REST/JSON): authenticate, stamp, cancel, status, ping. PROTOCOLS.md §2.

Stamps go to ``/cfdi33/v2/stamp/v2``: on a duplicate that route answers 307 *with* the stored ``tfd`` and
``cfdi``, which we return as ``already_stamped``. Tokens last 2 h and are cached per process; a 401 drops
the cached token and retries once. With no username, the password is taken as a "token infinito".
SW has no status endpoint: its own SDKs ask SAT's ConsultaCFDIService, and so do we.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time

import requests
from cryptography.hazmat.primitives import serialization
from django.conf import settings

from . import sat_status
from .base import (
    HELD,
    IN_PROCESS,
    NOT_SENT,
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
    server_error,
    stamp_result_from_xml,
    timeout,
    transport_error,
    xml_with_declaration,
)

PROVIDER = "SW Sapien"
URLS = {"test": "https://services.test.sw.com.mx", "production": "https://services.sw.com.mx"}
API_URLS = {"test": "https://api.test.sw.com.mx", "production": "https://api.sw.com.mx"}
STAMP_PATH = "/cfdi33/v2/stamp/v2"
TOKEN_MARGIN_SECONDS = 300

# "CFDI40102 - texto", "AU2000 - texto", "307. texto" (SAT 30x codes use a dot).
_CODE = re.compile(r"^\s*([A-Za-z]*[0-9]+[A-Za-z0-9]*)\s*(?:-|\.)\s*(.*)$", re.S)

_tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()

CANCEL_STATUS = {
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
}


def split_message(message: str) -> tuple[str, str]:
    match = _CODE.match(message or "")
    if not match:
        return "", (message or "").strip()
    return match.group(1), match.group(2).strip()


def error_from_body(body: dict, http_status: int, raw) -> PacError:
    """Map SW's ``{"message": "<CODE> - <text>", "messageDetail": …}`` envelope to a PacError."""
    message = str(body.get("message") or "")
    detail = str(body.get("messageDetail") or "")
    code, text = split_message(message)
    upper = code.upper()
    shown = text or message or "SW Sapien rechazó la solicitud."
    if detail and detail not in shown:
        shown = f"{shown} ({detail})"
    if upper.startswith("AU") or http_status == 401:
        return PacError(code or "401", "SW Sapien rechazó las credenciales o el token: revisa la configuración del "
                        f"PAC. Detalle: {shown}", permanent=True, raw=raw, outcome=REFUSED)
    if upper == "307":
        return PacError("307", "El CFDI ya había sido timbrado y SW Sapien no devolvió el timbre previo. "
                        "Reintentaremos para recuperarlo.", permanent=False, raw=raw, outcome=HELD)
    if http_status >= 500:
        return server_error(PROVIDER, http_status, raw)
    if upper in ("708",) or "intermiten" in shown.lower():
        return PacError(code or "708", f"SW Sapien no pudo comunicarse con el SAT: {shown}. Reintentaremos.",
                        permanent=False, raw=raw, outcome=REFUSED)
    # CFDI40xxx, 30x, CO/CC/CA… and any other coded refusal: the document (or account) is at fault.
    return PacError(code or f"http_{http_status}", f"SW Sapien: {shown}", permanent=True, raw=raw)


class SwPac(Pac):
    name = "sw"
    label = PROVIDER

    @property
    def concurrent_stamps(self) -> int:
        return int(getattr(settings, "PAC_STAMP_CONCURRENCY", 4))

    def __init__(self, *, username: str, password: str, environment: str = "test", base_url: str | None = None,
                 api_url: str | None = None, sat_status_url: str | None = None):
        self.username = username
        self.password = password
        self.environment = environment
        self.base_url = (base_url or URLS.get(environment, URLS["test"])).rstrip("/")
        self.api_url = (api_url or API_URLS.get(environment, API_URLS["test"])).rstrip("/")
        self.sat_status_url = sat_status_url or (
            sat_status.PRODUCTION_URL if environment == "production" else sat_status.TEST_URL
        )
        self.session = requests.Session()

    @property
    def circuit_key(self) -> str:
        return f"{self.name}:{self.base_url}"

    # --- authentication ------------------------------------------------------------------------------

    def _cache_key(self) -> tuple[str, str, str]:
        return (self.base_url, self.username, hashlib.sha256(self.password.encode()).hexdigest())

    def token(self, *, refresh: bool = False) -> str:
        require_credentials(PROVIDER, self.password)
        if not self.username:
            return self.password  # token infinito from the SW portal
        key = self._cache_key()
        with _tokens_lock:
            cached = _tokens.get(key)
            if cached and not refresh and cached[1] - TOKEN_MARGIN_SECONDS > time.time():
                return cached[0]
        # Authenticating stamps nothing: whatever goes wrong here, no document was sent.
        body, status, raw = self._request("POST", f"{self.base_url}/v2/security/authenticate",
                                          json={"user": self.username, "password": self.password}, sent=False)
        data = body.get("data") or {}
        if status != 200 or body.get("status") != "success" or not data.get("token"):
            raise error_from_body(body, status if status != 200 else 401, raw)
        try:
            expires = float(data.get("expires_in") or 0)
        except (TypeError, ValueError):
            expires = 0
        if expires < time.time():  # not an epoch: be conservative (tokens last 2 h)
            expires = time.time() + 7200
        with _tokens_lock:
            _tokens[key] = (data["token"], expires)
        return data["token"]

    def _request(self, method: str, url: str, *, token: str | None = None, sent: bool = True,
                 **kwargs) -> tuple[dict, int, str]:
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self.session.request(method, url, headers=headers, timeout=timeout(), **kwargs)
        except requests.RequestException as exc:
            raise transport_error(PROVIDER, exc, sent=sent) from exc
        raw = excerpt(response.content)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            if response.status_code == 401:
                return {}, 401, raw
            if response.status_code >= 400:  # a gateway's or the router's page, not SW's JSON envelope
                raise server_error(PROVIDER, response.status_code, raw)
            raise malformed(PROVIDER, raw)
        return body, response.status_code, raw

    def _authorized(self, method: str, url: str, **kwargs) -> tuple[dict, int, str]:
        body, status, raw = self._request(method, url, token=self._token_before_sending(), **kwargs)
        if status == 401 and self.username:
            body, status, raw = self._request(method, url, token=self._token_before_sending(refresh=True), **kwargs)
        return body, status, raw

    def _token_before_sending(self, *, refresh: bool = False) -> str:
        try:
            return self.token(refresh=refresh)
        except PacError as exc:
            exc.outcome = NOT_SENT  # whatever went wrong, the document itself was not sent
            raise

    # --- operations ----------------------------------------------------------------------------------

    def stamp(self, sealed_xml: bytes) -> StampResult:
        files = {"xml": ("xml", sealed_xml, "text/xml")}
        body, status, raw = self._authorized("POST", f"{self.base_url}{STAMP_PATH}", files=files)
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        if body.get("status") == "success" and status == 200:
            cfdi = data.get("cfdi")
            if not cfdi:
                raise malformed(PROVIDER, raw, "sin cfdi")
            return stamp_result_from_xml(xml_with_declaration(cfdi), provider=PROVIDER)
        code, _ = split_message(str(body.get("message") or ""))
        if code == "307" and data.get("cfdi"):
            return stamp_result_from_xml(xml_with_declaration(data["cfdi"]), already_stamped=True, provider=PROVIDER)
        if status >= 500:
            raise server_error(PROVIDER, status, raw)
        raise error_from_body(body, status, raw)

    def cancel(self, *, uuid: str, motivo: str, replacement_uuid: str | None = None, certificate) -> CancelResult:
        check_cancel_request(uuid, motivo, replacement_uuid)
        uuid = uuid.upper()
        # SW wants the SAT .cer (DER) and an encrypted PKCS#8 .key with its password: the loaded CSD has no
        # original key bytes, so re-encrypt it with a one-time password.
        one_time = secrets.token_urlsafe(18)
        key_der = certificate.private_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(one_time.encode()),
        )
        payload = {
            "uuid": uuid,
            "rfc": certificate.rfc,
            "motivo": motivo,
            "foliosustitucion": (replacement_uuid or "").upper(),
            "b64Cer": base64.b64encode(certificate.info.der).decode(),
            "b64Key": base64.b64encode(key_der).decode(),
            "password": one_time,
        }
        body, status, raw = self._authorized("POST", f"{self.base_url}/cfdi33/cancel/csd", json=payload)
        if status >= 500:
            raise server_error(PROVIDER, status, raw)
        if body.get("status") != "success":
            raise error_from_body(body, status, raw)
        data = body.get("data") or {}
        codes = {str(k).upper(): str(v) for k, v in (data.get("uuid") or {}).items()}
        code = codes.get(uuid) or next(iter(codes.values()), "")
        acuse = data.get("acuse")
        acuse_bytes = acuse.encode("utf-8") if isinstance(acuse, str) and acuse else None
        if code == "205":
            raise PacError("205", "El SAT aún no registra el CFDI (es común justo después de timbrar). "
                           "Reintentaremos la cancelación en unos minutos.", permanent=False, raw=raw)
        if code in CANCEL_STATUS:
            state, message = CANCEL_STATUS[code]
            return CancelResult(uuid, state, code, message, acuse_bytes)
        if not code:
            raise malformed(PROVIDER, raw, "sin estatus del folio")
        return CancelResult(uuid, REJECTED, code, f"El SAT respondió {code} a la cancelación.", acuse_bytes)

    def status(self, *, uuid: str, emisor_rfc: str, receptor_rfc: str, total) -> StatusResult:
        return sat_status.consulta(uuid=uuid, emisor_rfc=emisor_rfc, receptor_rfc=receptor_rfc, total=total,
                                   url=self.sat_status_url, verify=self.environment == "production")

    def ping(self) -> str:
        token = self.token(refresh=True) if self.username else self.token()
        env = "producción" if self.environment == "production" else "pruebas"
        body, status, raw = self._request("GET", f"{self.api_url}/management/v2/api/users/balance", token=token)
        if status == 401:
            raise error_from_body(body, 401, raw)
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        balance = data.get("stampsBalance")
        if status == 200 and balance is not None:
            return f"Conexión correcta con SW Sapien ({env}). Timbres disponibles: {balance}."
        return f"Conexión correcta con SW Sapien ({env})."

