"""Fake Finkok, SW Sapien and SAT ConsultaCFDIService: real HTTP servers on 127.0.0.1.

For the PAC tests (tests/invoicing/pac) and the reliability suite (bench/faults.py); the product never imports
this module at run time. They answer with the payload shapes captured in ../shared/pac/PROTOCOLS.md (envelope prefixes, field order,
HTTP status per error family) and check the requests the way the real services do (SOAPAction, namespaces,
base64 once, multipart part name, Bearer token). A test picks the answer with ``server.modes[operation]``:
"ok" (default), "timeout" (sleep past the client timeout, then answer 504 without processing), "http500",
"malformed", or an error family.

Failure shapes for the failover tests (docs/pac.md), on top of the modes:
- ``down()`` / ``up()``: the port refuses connections, then listens again (same port);
- "drop": process the request (a stamp is made and kept), then close the connection without an answer;
- "late": process it only after ``sleep_seconds`` (the client gave up meanwhile), so the stamp appears late;
- "http503": a gateway's "Service Unavailable" page, the request never processed;
- ``latency[operation]``: seconds every answer waits after processing (slow answers; the stamp is kept);
- ``faults[operation] = (mode, rate)``: that share of the requests get ``mode`` (a seeded ``rng``);
- ``resend_modes[operation] = mode``: a document seen before (a resend of the same sealed XML) gets ``mode``;
  by default a resend gets the real answer, 307 "timbre previo" with the earlier stamp.
``issued()`` is the fake's own ledger of the UUIDs it stamped.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import json
import random
import re
import secrets
import socket
import threading
import time
import uuid as uuidlib
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape, unescape

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
CFDI_NS = "http://www.sat.gob.mx/cfd/4"
TFD_NS = "http://www.sat.gob.mx/TimbreFiscalDigital"
SAT_CERT_NUMBER = "30001000000400002495"


class FakeServer:
    """A ThreadingHTTPServer on an ephemeral port; subclasses implement ``handle``."""

    def __init__(self):
        self.modes: dict[str, str] = {}
        self.faults: dict[str, tuple[str, float]] = {}
        self.resend_modes: dict[str, str] = {}
        self.latency: dict[str, float] = {}
        self.rng = random.Random(0)
        self.requests: list[dict] = []
        self.sleep_seconds = 2.0
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._port = 0
        self._listen()

    def _listen(self):
        # A deep accept queue: with many requests in flight a full one refuses connections, which would look
        # like the PAC being down.
        server_class = type("FakeHTTPServer", (ThreadingHTTPServer,), {"request_queue_size": 128})
        self.httpd = server_class(("127.0.0.1", self._port), self._handler_class())
        self.httpd.daemon_threads = True
        self._port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def is_down(self) -> bool:
        return self.httpd is None

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()

    def down(self):
        """Refuse connections (nothing listens on the port) until ``up()``."""
        if self.httpd is not None:
            self.stop()
            self.httpd = None

    def up(self):
        """Listen again on the same port."""
        if self.httpd is None:
            self._listen()
            self.start()

    def reset(self):
        self.up()
        self.modes.clear()
        self.faults.clear()
        self.resend_modes.clear()
        self.latency.clear()
        self.rng = random.Random(0)
        self.requests.clear()
        self._seen.clear()

    def mode(self, operation: str) -> str:
        return self.modes.get(operation, "ok")

    def pick_mode(self, operation: str, document: str | None = None) -> str:
        """The answer for this request: the operation's mode, else the resend mode for a document seen before,
        else a fault drawn at its rate, else "ok"."""
        mode = self.mode(operation)
        if mode != "ok":
            return mode
        with self._lock:
            if document is not None:
                seen = document in self._seen
                self._seen.add(document)
                if seen and operation in self.resend_modes:
                    return self.resend_modes[operation]
            fault = self.faults.get(operation)
            if fault is not None and self.rng.random() < fault[1]:
                return fault[0]
        return "ok"

    def calls(self, operation: str) -> list[dict]:
        return [r for r in self.requests if r["operation"] == operation]

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def _serve(self, method: str):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = server.handle(method, self.path, self.headers, body)
                if status == "timeout":
                    time.sleep(server.sleep_seconds)
                    status, headers, payload = 504, {}, b""
                if status == "drop":  # processed; the answer is lost with the connection
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if status == "http503":
                    status, headers, payload = 503, {"Content-Type": "text/html"}, (
                        b"<html><body><h1>503 Service Temporarily Unavailable</h1><hr><center>nginx</center>"
                        b"</body></html>")
                try:
                    self.send_response(status)
                    for name, value in {"Server": "nginx", **headers}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self):
                self._serve("POST")

            def do_GET(self):
                self._serve("GET")

        return Handler

    def handle(self, method, path, headers, body):  # pragma: no cover - abstract
        raise NotImplementedError

    def before_processing(self, operation: str, mode: str):
        """The generic shapes that answer without processing; None lets the operation run."""
        if mode in ("timeout", "http503"):
            return mode, {}, b""
        if mode == "late":
            time.sleep(self.sleep_seconds)  # the client gives up meanwhile; the stamp is made anyway
        return None

    def after_processing(self, operation: str, mode: str, answer):
        if mode == "drop":
            return "drop", {}, b""
        delay = self.latency.get(operation, 0)
        if delay:
            time.sleep(delay)
        return answer


def add_fake_tfd(sealed: bytes, uuid: str, fecha: str, *, rfc_prov: str = "CVD110412TF6") -> tuple[bytes, str]:
    """Put a TimbreFiscalDigital into the sealed CFDI as a PAC would (the fakes do not sign it)."""
    root = etree.fromstring(sealed)
    complemento = root.find(f"{{{CFDI_NS}}}Complemento")
    if complemento is None:
        complemento = etree.SubElement(root, f"{{{CFDI_NS}}}Complemento")
    tfd = etree.SubElement(
        complemento,
        f"{{{TFD_NS}}}TimbreFiscalDigital",
        nsmap={"tfd": TFD_NS},
        Version="1.1",
        UUID=uuid,
        FechaTimbrado=fecha,
        RfcProvCertif=rfc_prov,
        SelloCFD=root.get("Sello", ""),
        NoCertificadoSAT=SAT_CERT_NUMBER,
        SelloSAT="RkFLRVNFTExPU0FU" * 20,
    )
    stamped = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return stamped, etree.tostring(tfd, encoding="unicode")


# --- Finkok --------------------------------------------------------------------------------------------

FINKOK_USER, FINKOK_PASSWORD = "user@example.com", "s3cret"
FINKOK_PREFIXES = (
    'xmlns:wsa="http://schemas.xmlsoap.org/ws/2003/03/addressing" xmlns:tns="{ns}" '
    'xmlns:plink="http://schemas.xmlsoap.org/ws/2003/05/partner-link/" '
    'xmlns:xop="http://www.w3.org/2004/08/xop/include" xmlns:senc="http://schemas.xmlsoap.org/soap/encoding/" '
    'xmlns:s12env="http://www.w3.org/2003/05/soap-envelope/" xmlns:s12enc="http://www.w3.org/2003/05/soap-encoding/" '
    'xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:senv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:s0="apps.services.soap.core.views"'
)


def finkok_envelope(ns: str, body: str) -> bytes:
    return (
        f"<?xml version='1.0' encoding='UTF-8'?>\n<senv:Envelope {FINKOK_PREFIXES.format(ns=ns)}>"
        f"<senv:Body>{body}</senv:Body></senv:Envelope>"
    ).encode()


def finkok_fault(text: str) -> tuple[int, dict, bytes]:
    body = (
        f"<senv:Fault><faultcode>senv:Server</faultcode><faultstring>{escape(text)}</faultstring>"
        f"<faultactor></faultactor></senv:Fault>"
    )
    return 500, {"Content-Type": "text/xml; charset=utf-8"}, finkok_envelope("http://facturacion.finkok.com/stamp", body)


def incidencia(code: str, message: str, rfc: str = "EKU9003173C9") -> str:
    return (
        "<s0:Incidencia><s0:IdIncidencia>ab12</s0:IdIncidencia>"
        f"<s0:RfcEmisor>{rfc}</s0:RfcEmisor><s0:Uuid/><s0:CodigoError>{code}</s0:CodigoError>"
        f"<s0:WorkProcessId>7f2</s0:WorkProcessId><s0:MensajeIncidencia>{escape(message)}</s0:MensajeIncidencia>"
        "<s0:ExtraInfo/><s0:NoCertificadoPac>20001000000300022323</s0:NoCertificadoPac>"
        "<s0:FechaRegistro>2023-09-21T10:50:04</s0:FechaRegistro></s0:Incidencia>"
    )


STAMP_ERRORS = {
    "cfdi40102": ("CFDI40102", "El resultado de la digestión debe ser igual al resultado de la desencripción "
                  "del sello."),
    "401": ("401", "Fecha y hora de generación fuera de rango"),
    "300": ("300", "El usuario o contraseña son inválidos"),
    "705": ("705", "XML Estructura inválida"),
    "708": ("708", "No se pudo conectar al SAT"),
    "718": ("718", "Timbres agotados"),
}


class FinkokFake(FakeServer):
    """Cancellations are remembered per UUID, as SAT does: ``acceptance`` says whether a new request waits for the
    receptor (201, then "En proceso" in get_sat_status until ``answer(uuid, "accept"|"reject")``) or is cancelled
    without it; a second request for a UUID in process or cancelled answers 202."""

    def __init__(self):
        super().__init__()
        self.stamps: dict[str, tuple[str, bytes]] = {}  # sha256(sealed) → (uuid, stamped)
        self.stamp_lock = threading.Lock()
        self.cancellations: dict[str, dict] = {}  # uuid → {"status": in_process|cancelled|rejected, motivo, folio}
        self.acceptance = False

    def reset(self):
        super().reset()
        self.stamps.clear()
        self.cancellations.clear()
        self.acceptance = False

    def answer(self, uuid: str, what: str) -> None:
        """The receptor accepts or rejects a request in process."""
        self.cancellations[uuid.upper()]["status"] = "cancelled" if what == "accept" else "rejected"

    def handle(self, method, path, headers, body):
        service = path.split("/servicios/soap/")[-1].removesuffix(".wsdl")
        try:
            root = etree.fromstring(body)
            op = root.find(f"{{{SOAP_ENV}}}Body")[0]
        except Exception:  # noqa: BLE001
            return finkok_fault("Document is empty")
        ns, name = op.tag[1:].split("}")
        if ns != f"http://facturacion.finkok.com/{service}":
            return finkok_fault(f"Requested resource {op.tag!r} not found")
        action = headers.get("SOAPAction")
        if action not in (None, f'"{name}"', name):
            return finkok_fault(f"SOAPAction {action!r} does not match {name}")
        fields = {etree.QName(c).localname: c for c in op}
        # Qualified schema: every child must be in the service namespace.
        if any(etree.QName(c).namespace != ns for c in op):
            return finkok_fault("Unqualified child element")
        self.requests.append({"operation": name, "fields": fields, "body": body, "path": path})
        document = hashlib.sha256((fields["xml"].text or "").encode()).hexdigest() \
            if name == "stamp" and "xml" in fields else None
        mode = self.pick_mode(name, document)
        early = self.before_processing(name, mode)
        if early is not None:
            return early
        if mode == "http500":
            return finkok_fault("local variable 'invoice' referenced before assignment")
        if mode == "malformed":
            return 200, {"Content-Type": "text/xml"}, b"<html><body>502 Bad Gateway</body>"
        text = {k: (v.text or "") for k, v in fields.items()}
        handler = getattr(self, f"op_{name}", None)
        if handler is None:
            return finkok_fault(f"Unknown operation {name}")
        result = handler(text, fields, "ok" if mode in ("drop", "late") else mode)
        if not isinstance(result, tuple):
            payload = finkok_envelope(ns, f"<tns:{name}Response><tns:{name}Result>{result}</tns:{name}Result>"
                                          f"</tns:{name}Response>")
            result = 200, {"Content-Type": "text/xml; charset=utf-8"}, payload
        return self.after_processing(name, mode, result)

    def issued(self) -> set[str]:
        """Every UUID this fake stamped (its ledger)."""
        with self.stamp_lock:
            return {uuid for uuid, _ in self.stamps.values()}

    # stamp.wsdl

    def _stamp_children(self, stamped: bytes, uuid: str, fecha: str, cod: str, incid: str = "") -> str:
        return (
            f"<s0:xml>{escape(stamped.decode())}</s0:xml><s0:UUID>{uuid}</s0:UUID><s0:Fecha>{fecha}</s0:Fecha>"
            f"<s0:CodEstatus>{cod}</s0:CodEstatus><s0:SatSeal>NJDH==</s0:SatSeal>"
            f"<s0:Incidencias>{incid}</s0:Incidencias><s0:NoCertificadoSAT>{SAT_CERT_NUMBER}</s0:NoCertificadoSAT>"
        )

    def op_stamp(self, text, fields, mode):
        if list(fields) != ["xml", "username", "password"]:
            return finkok_fault(f"Bad child order {list(fields)}")
        if (text["username"], text["password"]) != (FINKOK_USER, FINKOK_PASSWORD):
            return "<s0:Incidencias>" + incidencia("300", "El usuario o contraseña son inválidos") + "</s0:Incidencias>"
        try:
            sealed = base64.b64decode(text["xml"], validate=True)
            etree.fromstring(sealed)
        except Exception:  # noqa: BLE001 - double base64 or junk
            return "<s0:Incidencias>" + incidencia("705", "XML Estructura inválida") + "</s0:Incidencias>"
        if mode in STAMP_ERRORS:
            code, message = STAMP_ERRORS[mode]
            return "<s0:Incidencias>" + incidencia(code, message) + "</s0:Incidencias>"
        key = hashlib.sha256(sealed).hexdigest()
        fecha = datetime.now().strftime("%Y-%m-%dT%H:%M:%S")  # noqa: DTZ005 - Finkok writes local time
        with self.stamp_lock:  # the same document sent twice at once still gets one UUID, as from Finkok
            return self._stamp_once(key, sealed, fecha, mode)

    def _stamp_once(self, key: str, sealed: bytes, fecha: str, mode: str) -> str:
        if key in self.stamps:
            uuid, stamped = self.stamps[key]
            if mode == "307_empty":
                # Captured: 307 can come back with no data, and duplicated.
                inc = incidencia("307", "El CFDI contiene un timbre previo") * 2
                return f"<s0:CodEstatus>Comprobante timbrado previamente</s0:CodEstatus><s0:Incidencias>{inc}</s0:Incidencias>"
            inc = incidencia("307", "El CFDI contiene un timbre previo")
            return self._stamp_children(stamped, uuid, fecha, "Comprobante timbrado previamente", inc)
        uuid = str(uuidlib.uuid4()).upper()
        stamped, _ = add_fake_tfd(sealed, uuid, fecha)
        self.stamps[key] = (uuid, stamped)
        return self._stamp_children(stamped, uuid, fecha, "Comprobante timbrado satisfactoriamente")

    def op_stamped(self, text, fields, mode):
        sealed = base64.b64decode(text["xml"])
        found = self.stamps.get(hashlib.sha256(sealed).hexdigest())
        if not found or mode == "603":
            inc = incidencia("603", "El CFDI no contiene un timbre previo")
            return f"<s0:Incidencias>{inc}</s0:Incidencias>"
        uuid, stamped = found
        return self._stamp_children(stamped, uuid, "2023-09-21T10:50:04", "Comprobante timbrado previamente")

    # cancel.wsdl

    def op_cancel(self, text, fields, mode):
        order = ["UUIDS", "username", "password", "taxpayer_id", "cer", "key", "store_pending"]
        if list(fields) != order:
            return finkok_fault(f"Bad child order {list(fields)}")
        if (text["username"], text["password"]) != (FINKOK_USER, FINKOK_PASSWORD):
            return "<s0:CodEstatus>Invalid Username or Password</s0:CodEstatus>"
        try:
            cer_pem = base64.b64decode(text["cer"], validate=True)
            x509.load_pem_x509_certificate(cer_pem)
            key_pem = base64.b64decode(text["key"], validate=True)
            assert key_pem.startswith(b"-----BEGIN")
            serialization.load_pem_private_key(key_pem, password=None)
        except Exception:  # noqa: BLE001
            return finkok_fault("[('PEM routines', 'PEM_read_bio', 'no start line')]")
        item = fields["UUIDS"][0]
        if etree.QName(item).namespace != "apps.services.soap.core.views":
            return finkok_fault("UUID element must be in apps.services.soap.core.views")
        uuid, motivo, folio = item.get("UUID"), item.get("Motivo"), item.get("FolioSustitucion")
        if motivo == "01" and not folio:
            return "<s0:CodEstatus>Motivo cancelación es 01, FolioSustitucion del CFDI es requerido.</s0:CodEstatus>"
        if mode == "708":
            return "<s0:CodEstatus>708</s0:CodEstatus>"
        code, detail = {
            "ok": ("201", "Petición de cancelación realizada exitosamente"),
            "cancelled": ("201", "Cancelado sin aceptación"),
            "205": ("205", "UUID No encontrado"),
            "no_cancelable": ("no_cancelable", "No cancelable"),
        }[mode]
        known = self.cancellations.get(uuid.upper())
        if code == "201" and known is not None and known["status"] in ("in_process", "cancelled"):
            code, detail = "202", "Previamente cancelado"
        elif code == "201":
            status = "cancelled" if mode == "cancelled" or not self.acceptance else "in_process"
            self.cancellations[uuid.upper()] = {"status": status, "motivo": motivo, "folio": folio}
        acuse = (
            '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
            '<CancelaCFDResponse xmlns="http://cancelacfd.sat.gob.mx"><CancelaCFDResult Fecha="2023-09-14T11:19:37" '
            f'RfcEmisor="{text["taxpayer_id"]}"><Folios><UUID>{uuid}</UUID><EstatusUUID>{code}</EstatusUUID>'
            '</Folios><Signature Id="SelloSAT"/></CancelaCFDResult></CancelaCFDResponse></s:Body></s:Envelope>'
        )
        return (
            f"<s0:Folios><s0:Folio><s0:UUID>{uuid}</s0:UUID><s0:EstatusUUID>{code}</s0:EstatusUUID>"
            f"<s0:EstatusCancelacion>{escape(detail)}</s0:EstatusCancelacion></s0:Folio></s0:Folios>"
            f"<s0:Acuse>{escape(acuse)}</s0:Acuse><s0:Fecha>2023-09-14T11:19:37</s0:Fecha>"
            f"<s0:RfcEmisor>{text['taxpayer_id']}</s0:RfcEmisor>"
        )

    def op_get_sat_status(self, text, fields, mode):
        if list(fields) != ["username", "password", "taxpayer_id", "rtaxpayer_id", "uuid", "total"]:
            return finkok_fault(f"Bad child order {list(fields)}")
        if (text["username"], text["password"]) != (FINKOK_USER, FINKOK_PASSWORD):
            return "<s0:error>Invalid Username or Password</s0:error>"
        known = {uuid for uuid, _ in self.stamps.values()}
        cancellation = self.cancellations.get(text["uuid"].upper(), {}).get("status")
        if mode == "not_found" or (text["uuid"] not in known and mode == "ok"):
            sat = ("<s0:EsCancelable/><s0:CodigoEstatus>N - 602: Comprobante no encontrado.</s0:CodigoEstatus>"
                   "<s0:Estado>No Encontrado</s0:Estado><s0:EstatusCancelacion/>")
        else:
            estado, estatus = {
                "cancelled": ("Cancelado", "Cancelado con aceptación" if self.acceptance else "Cancelado sin aceptación"),
                "in_process": ("Vigente", "En proceso"),
                "rejected": ("Vigente", "Solicitud rechazada"),
            }.get("cancelled" if mode == "cancelled" else cancellation, ("Vigente", ""))
            cancelable = "Cancelable con aceptación" if self.acceptance else "Cancelable sin aceptación"
            sat = (f"<s0:EsCancelable>{cancelable}</s0:EsCancelable>"
                   "<s0:CodigoEstatus>S - Comprobante obtenido satisfactoriamente.</s0:CodigoEstatus>"
                   f"<s0:Estado>{estado}</s0:Estado><s0:EstatusCancelacion>{estatus}</s0:EstatusCancelacion>"
                   "<s0:ValidacionEFOS>200</s0:ValidacionEFOS>")
        return f"<s0:sat>{sat}</s0:sat>"

    # utilities.wsdl

    def op_datetime(self, text, fields, mode):
        if (text.get("username"), text.get("password")) != (FINKOK_USER, FINKOK_PASSWORD):
            return "<s0:datetime/><s0:error>Invalid username or password</s0:error>"
        return "<s0:datetime>2026-11-21T10:50:04</s0:datetime><s0:error/>"


# --- SW Sapien -----------------------------------------------------------------------------------------

SW_USER, SW_PASSWORD = "demo@sw.com.mx", "s3cret"


def sw_json(status: int, payload: dict) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(payload).encode()


def sw_error(status: int, message: str, detail=None, data=None) -> tuple[int, dict, bytes]:
    return sw_json(status, {"message": message, "messageDetail": detail, "data": data, "status": "error"})


class SwFake(FakeServer):
    """SW has no status service: with ``sat`` set (a SatFake), what it stamps and cancels is registered there, as
    the real SW hands it to SAT; ``acceptance`` says whether a cancellation waits for the receptor."""

    def __init__(self):
        super().__init__()
        self.tokens: set[str] = set()
        self.stamps: dict[str, tuple[str, str, str]] = {}  # sha256 → (uuid, tfd, cfdi)
        self.auth_count = 0
        self.sat: SatFake | None = None
        self.acceptance = False

    def reset(self):
        super().reset()
        self.tokens.clear()
        self.stamps.clear()
        self.auth_count = 0
        self.sat = None
        self.acceptance = False

    def expire_tokens(self):
        self.tokens.clear()

    def handle(self, method, path, headers, body):
        route = path.rstrip("/")
        operation = {
            "/v2/security/authenticate": "auth",
            "/cfdi33/v2/stamp/v2": "stamp",
            "/cfdi33/cancel/csd": "cancel",
            "/management/v2/api/users/balance": "balance",
        }.get(route)
        if operation is None:
            return 404, {"Content-Type": "text/plain"}, b"Not Found"
        self.requests.append({"operation": operation, "headers": dict(headers), "body": body, "path": path})
        # The multipart body differs by boundary on each send: the document is the part, hashed in stamp().
        mode = self.pick_mode(operation, self._document(headers, body) if operation == "stamp" else None)
        early = self.before_processing(operation, mode)
        if early is not None:
            return early
        if mode == "http500":
            return 500, {"Content-Type": "text/html"}, b"<html><body><h1>500 Internal Server Error</h1></body></html>"
        if mode == "malformed":
            return 200, {"Content-Type": "application/json"}, b'{"data": {"tfd": "<tfd:Timbre'
        if operation == "auth":
            return self.after_processing(operation, mode, self.auth(body, mode))
        auth = headers.get("Authorization", "")
        token = auth.split(" ", 1)[1] if " " in auth else ""
        if not token:
            return sw_error(400, "AU4101 - El token proporcionado viene vacio.")
        if token not in self.tokens:
            return 401, {"Content-Type": "text/plain"}, b""
        answer = getattr(self, operation)(headers, body, "ok" if mode in ("drop", "late") else mode)
        return self.after_processing(operation, mode, answer)

    @staticmethod
    def _sealed_part(headers, body) -> bytes | None:
        content_type = headers.get("Content-Type", "")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        if not message.is_multipart():
            return None
        parts = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
        return parts["xml"].get_payload(decode=True) if "xml" in parts else None

    def _document(self, headers, body) -> str | None:
        sealed = self._sealed_part(headers, body)
        return hashlib.sha256(sealed).hexdigest() if sealed is not None else None

    def issued(self) -> set[str]:
        """Every UUID this fake stamped (its ledger)."""
        with self._lock:
            return {uuid for uuid, _, _ in self.stamps.values()}

    def auth(self, body, mode):
        self.auth_count += 1
        data = json.loads(body or b"{}")
        if (data.get("user"), data.get("password")) != (SW_USER, SW_PASSWORD) or mode == "bad_credentials":
            return sw_error(400, "AU2000 - El usuario y/o contraseña son inválidos, no se puede autenticar el "
                                 "servicio.")
        token = "T2lYQ0t4" + secrets.token_hex(8)
        self.tokens.add(token)
        return sw_json(200, {"data": {"token": token, "expires_in": int(time.time()) + 7200, "tokeny_type": "Bearer"},
                             "status": "success"})

    def stamp(self, headers, body, mode):
        sealed = self._sealed_part(headers, body)
        if sealed is None:
            return sw_error(400, "Error al leer el xml", "No se encontró la parte xml")
        if mode == "cfdi40102":
            return sw_error(400, "CFDI40102 - El resultado de la digestión debe ser igual al resultado de la "
                                 "desencripción del sello.")
        if mode == "301":
            return sw_error(400, "301. XML mal formado.")
        with self._lock:  # the same document sent twice at once still gets one UUID
            return self._stamp_once(sealed, mode)

    def _stamp_once(self, sealed: bytes, mode: str):
        key = hashlib.sha256(sealed).hexdigest()
        if key in self.stamps:
            uuid, tfd, cfdi = self.stamps[key]
            data = None if mode == "307_empty" else {"tfd": tfd, "cfdi": cfdi}
            return sw_error(400, "307. El comprobante contiene un timbre previo.", data=data)
        uuid = str(uuidlib.uuid4()).upper()
        fecha = (datetime.now() - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")  # noqa: DTZ005
        stamped, tfd = add_fake_tfd(sealed, uuid, fecha, rfc_prov="SPR190613I52")
        cfdi = stamped.decode()
        self.stamps[key] = (uuid, tfd, cfdi)
        if self.sat is not None:
            root = etree.fromstring(sealed)
            emisor, receptor = root.find(f"{{{CFDI_NS}}}Emisor"), root.find(f"{{{CFDI_NS}}}Receptor")
            self.sat.documents[uuid] = {"re": emisor.get("Rfc"), "rr": receptor.get("Rfc"), "tt": root.get("Total"),
                                        "es_cancelable": "Cancelable con aceptación" if self.acceptance
                                        else "Cancelable sin aceptación"}
        return sw_json(200, {"data": {"tfd": tfd, "cfdi": cfdi}, "status": "success"})

    def cancel(self, headers, body, mode):
        data = {k.lower(): v for k, v in json.loads(body).items()}
        needed = {"uuid", "rfc", "motivo", "foliosustitucion", "b64cer", "b64key", "password"}
        if not needed <= set(data):
            return sw_error(400, "CACFDI33 - Problemas con los campos.")
        try:
            x509.load_der_x509_certificate(base64.b64decode(data["b64cer"]))
            serialization.load_der_private_key(base64.b64decode(data["b64key"]), data["password"].encode())
        except Exception:  # noqa: BLE001
            return sw_error(400, "Parámetros incompletos", "Son necesarios el .Cer y el .Key en formato B64 y la "
                                                           "contraseña correcta.")
        if data["motivo"] == "01" and not data["foliosustitucion"]:
            return sw_error(400, "CACFDI33 - Problemas con los campos.", "FolioSustitucion requerido")
        code = {"ok": "201", "202": "202", "205": "205", "203": "203"}[mode]
        uuid = data["uuid"]
        document = self.sat.documents.get(uuid.upper()) if self.sat is not None else None
        if document is not None and code == "201":
            if document.get("estado") == "Cancelado" or document.get("estatus_cancelacion") == "En proceso":
                code = "202"
            elif self.acceptance:
                document["estatus_cancelacion"] = "En proceso"
            else:
                document.update(estado="Cancelado", estatus_cancelacion="Cancelado sin aceptación")
        acuse = (
            '<?xml version="1.0" encoding="utf-8"?><Acuse xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            f'Fecha="2022-10-27T11:02:56.2475804" RfcEmisor="{data["rfc"]}"><Folios xmlns="http://cancelacfd.sat.gob.mx">'
            f"<UUID>{uuid}</UUID><EstatusUUID>{code}</EstatusUUID></Folios><Signature Id=\"SelloSAT\"/></Acuse>"
        )
        return sw_json(200, {"data": {"acuse": acuse, "uuid": {uuid: code}}, "status": "success"})

    def balance(self, headers, body, mode):
        return sw_json(200, {"data": {"idUserBalance": "x", "idUser": "y", "stampsBalance": 42, "stampsUsed": 8,
                                      "unlimited": False}, "status": "success"})


# --- SAT ConsultaCFDIService ---------------------------------------------------------------------------

SAT_ACTION = "http://tempuri.org/IConsultaCFDIService/Consulta"


class SatFake(FakeServer):
    def __init__(self):
        super().__init__()
        self.documents: dict[str, dict] = {}  # uuid → {"re", "rr", "tt", "estado", ...}

    def reset(self):
        super().reset()
        self.documents.clear()

    def answer(self, uuid: str, what: str) -> None:
        """The receptor accepts or rejects a cancellation in process."""
        if what == "accept":
            self.documents[uuid.upper()].update(estado="Cancelado", estatus_cancelacion="Cancelado con aceptación")
        else:
            self.documents[uuid.upper()].update(estado="Vigente", estatus_cancelacion="Solicitud rechazada")

    def handle(self, method, path, headers, body):
        if not path.endswith("/ConsultaCFDIService.svc"):
            return 404, {}, b""
        if headers.get("SOAPAction", "").strip('"') != SAT_ACTION:
            return 500, {"Content-Type": "text/xml"}, b"<s:Envelope/>"
        root = etree.fromstring(body)
        expr_node = root.find(".//{http://tempuri.org/}expresionImpresa")
        expression = unescape(expr_node.text or "")
        match = re.search(r"re=(.*?)&rr=(.*?)&tt=(.*?)&id=([^&]*)", expression)
        params = dict(zip(("re", "rr", "tt", "id"), (unescape(v) for v in match.groups()), strict=True)) if match else {}
        self.requests.append({"operation": "consulta", "params": params, "body": body})
        mode = self.mode("consulta")
        if mode == "timeout":
            return "timeout", {}, b""
        if mode == "http500":
            return 503, {"Content-Type": "text/html"}, b"<html>Service Unavailable</html>"
        if mode == "malformed":
            return 200, {"Content-Type": "text/xml"}, b"<s:Envelope><oops"
        doc = self.documents.get(params.get("id", "").upper())
        if params.get("tt") in (None, "?"):
            fields = {"CodigoEstatus": "N - 601: La expresión impresa proporcionada no es válida."}
        elif doc is None or doc["re"] != params.get("re") or doc["rr"] != params.get("rr"):
            fields = {"CodigoEstatus": "N - 602: Comprobante no encontrado.", "Estado": "No Encontrado"}
        else:
            fields = {
                "CodigoEstatus": "S - Comprobante obtenido satisfactoriamente.",
                "EsCancelable": doc.get("es_cancelable", "Cancelable con aceptación"),
                "Estado": doc.get("estado", "Vigente"),
                "EstatusCancelacion": doc.get("estatus_cancelacion", ""),
                "ValidacionEFOS": "200",
            }
        inner = "".join(
            f"<a:{name}>{escape(fields[name])}</a:{name}>" if fields.get(name) else f"<a:{name}/>"
            for name in ("CodigoEstatus", "EsCancelable", "Estado", "EstatusCancelacion", "ValidacionEFOS")
        )
        payload = (
            '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
            '<ConsultaResponse xmlns="http://tempuri.org/"><ConsultaResult '
            'xmlns:a="http://schemas.datacontract.org/2004/07/Sat.Cfdi.Negocio.ConsultaCfdi.Servicio" '
            f'xmlns:i="http://www.w3.org/2001/XMLSchema-instance">{inner}</ConsultaResult></ConsultaResponse>'
            "</s:Body></s:Envelope>"
        ).encode()
        return 200, {"Content-Type": "text/xml; charset=utf-8"}, payload
