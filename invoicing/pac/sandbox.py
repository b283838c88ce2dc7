"""The built-in sandbox PAC: checks what a PAC checks, stamps with a sandbox certificate, no fiscal validity.

Checks, with the engine's own code and codes: well-formed XML (301), no previous TFD (707), Certificado
readable (308) and a CSD not an e.firma (306), Sello against the cadena original (CFDI40102), then the
engine's offline rules with the certificate and the stamping time (CFDI40xxx, 305 outside the CSD's
validity, CFDI40139 emisor ≠ certificate RFC, 401 Fecha in the future or older than 72 h), then the XSD
(XSD) — business rules before the schema, in the pipeline's order, so both report the same code. Last, a
receptor listed in its small registry of demo taxpayers (sandbox_registry.py) must carry the registered name
and postal code, or it is refused like a real PAC refuses it (CFDI40145, CFDI40147).

Stamps carry a TimbreFiscalDigital 1.1 signed by a certificate created once per installation (stored in
SandboxCertificate; ``manage.py sandbox_pac_certificate --out FILE`` writes its .cer so ``cfdi_verify
--sat-cert FILE`` checks the SelloSAT) and a Leyenda saying it has no fiscal validity. Every stamp is
remembered in SandboxStamp, keyed by the SHA-256 of the sealed XML under a unique constraint, so the same
XML stamped twice (even concurrently, or after a worker crash) gets the same UUID back.

Cancellation follows SAT's rules (invoicing/cfdi/cancellation.py: acceptance, motives) and answers like SAT:
201 received, 202 already requested or cancelled, "No cancelable" while a vigente document relates to it.

Settings: SANDBOX_PAC_LATENCY_MS, SANDBOX_PAC_FAILURE_RATE (0–1, transient failures, half of them after the
stamp was stored, like a lost response), SANDBOX_PAC_CANCEL_ACCEPT_SECONDS (delay before the receptor answers a
cancellation that needs acceptance), SANDBOX_PAC_CANCEL_ANSWER ("accept" or "reject": that answer),
SANDBOX_PAC_SAT_DOWN (SAT's cancellation and status services are down: every call a transient error).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import random
import time
import uuid as uuidlib
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from lxml import etree

from infra.db.bulk import insert_sql
from infra.db.prepared import prepared_executemany
from infra.db.vendor import is_postgresql
from invoicing.cfdi import cancellation as rules
from invoicing.cfdi.cadena import cadena_original, tfd_cadena_original
from invoicing.cfdi.csd import CsdError, load_csd, read_certificate
from invoicing.cfdi.errors import CfdiError, errors_only
from invoicing.cfdi.parser import parse_cfdi
from invoicing.cfdi.seal import verify_seal
from invoicing.cfdi.testcsd import generate_test_csd
from invoicing.cfdi.validation import validate
from invoicing.cfdi.xml import to_bytes
from invoicing.cfdi.xsd import xsd_issues
from tickets.catalogs import PostalCode

from .base import (
    CANCELLED,
    CFDI_NS,
    IN_PROCESS,
    REJECTED,
    TFD_NS,
    ZONA_CENTRO,
    CancelResult,
    Pac,
    PacError,
    StampResult,
    StatusResult,
    check_cancel_request,
)
from .models import SandboxCertificate, SandboxStamp
from .sandbox_registry import registry_mismatch

RFC_PROV_CERTIF = "AAA010101AAA"  # SAT's generic test RFC: this PAC is not an authorised provider
LEYENDA = "Timbre del PAC sandbox de pruebas: sin validez fiscal ante el SAT"
CERT_HOLDER = "PAC SANDBOX SIN VALIDEZ FISCAL"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
TFD_SCHEMA_LOCATION = (
    "http://www.sat.gob.mx/TimbreFiscalDigital "
    "http://www.sat.gob.mx/sitio_internet/cfd/TimbreFiscalDigital/TimbreFiscalDigitalv11.xsd"
)


def _permanent(code: str, message: str, raw: str = "") -> PacError:
    return PacError(code, message, permanent=True, raw=raw)


# --- the installation's certificate ---------------------------------------------------------------------


def sandbox_certificate_row() -> SandboxCertificate:
    """The sandbox certificate, created on first use; race-safe across processes (unique name)."""
    row = SandboxCertificate.objects.filter(name="default").first()
    if row is not None:
        return row
    now = datetime.now(ZONA_CENTRO)
    serial = "00001" + "".join(random.choice("0123456789") for _ in range(15))  # noqa: S311 - not a secret
    cer, key, password = generate_test_csd(
        RFC_PROV_CERTIF, CERT_HOLDER, valid_from=now - timedelta(days=1), valid_to=now + timedelta(days=365 * 30),
        serial_digits=serial, password=base64.urlsafe_b64encode(uuidlib.uuid4().bytes).decode(), new_key=True,
    )
    try:
        with transaction.atomic():
            return SandboxCertificate.objects.create(name="default", cer_der=cer, key_der=key, password=password,
                                                     number=serial)
    except IntegrityError:
        return SandboxCertificate.objects.get(name="default")


def sandbox_csd():
    row = sandbox_certificate_row()
    # load_csd caches the loaded key per process (by digest), so this costs one query after the first call.
    return load_csd(bytes(row.cer_der), bytes(row.key_der), row.password, check_validity=False)


# --- acceptance rules (RULES.md §6) -----------------------------------------------------------------------


def needs_acceptance(stamp: SandboxStamp, at: datetime) -> bool:
    """SAT's rule (RMF 2.7.1.35), the one the cancellation service tells merchants about."""
    facts = rules.CfdiFacts(tipo=stamp.kind, total=stamp.total, receptor_rfc=stamp.receptor_rfc,
                            issued_at=stamp.stamped_at, emisor_rfc=stamp.emisor_rfc)
    return rules.acceptance(facts, at=at).required


def _blocking_relations(stamp: SandboxStamp) -> list[str]:
    """Vigente documents that relate to this one (other than a substitution, 04): SAT says "No cancelable"."""
    candidates = SandboxStamp.objects.filter(related__icontains=stamp.uuid).exclude(cancel_status=CANCELLED)
    return [
        other.uuid for other in candidates
        if any(r.get("uuid", "").upper() == stamp.uuid and r.get("tipo") != "04" for r in other.related)
    ]


def _accept_if_due(stamp: SandboxStamp) -> SandboxStamp:
    if stamp.cancel_status != IN_PROCESS or stamp.cancel_requested_at is None:
        return stamp
    delay = timedelta(seconds=float(getattr(settings, "SANDBOX_PAC_CANCEL_ACCEPT_SECONDS", 120)))
    now = timezone.now()
    if now >= stamp.cancel_requested_at + delay:
        if getattr(settings, "SANDBOX_PAC_CANCEL_ANSWER", "accept") == "reject":
            SandboxStamp.objects.filter(pk=stamp.pk, cancel_status=IN_PROCESS).update(cancel_status=REJECTED)
        else:
            SandboxStamp.objects.filter(pk=stamp.pk, cancel_status=IN_PROCESS).update(
                cancel_status=CANCELLED, cancelled_at=now
            )
        stamp.refresh_from_db()
    return stamp


def _sat_down() -> PacError | None:
    if getattr(settings, "SANDBOX_PAC_SAT_DOWN", False):
        return PacError("708", "El servicio de cancelación del SAT no está disponible (simulado con "
                        "SANDBOX_PAC_SAT_DOWN). Reintentaremos en unos minutos.", permanent=False)
    return None


# --- the provider -----------------------------------------------------------------------------------------


class SandboxPac(Pac):
    name = "sandbox"
    label = "PAC sandbox"

    def find_stamp(self, sealed_xml: bytes) -> StampResult | None:
        row = SandboxStamp.objects.filter(xml_sha256=hashlib.sha256(bytes(sealed_xml)).hexdigest()).first()
        return self._result(row, already_stamped=True) if row is not None else None

    def _latency(self, documents: int) -> None:
        latency = float(getattr(settings, "SANDBOX_PAC_LATENCY_MS", 0) or 0)
        if latency:  # as a real adapter would see it: PAC_STAMP_CONCURRENCY requests in flight at once
            width = max(1, int(getattr(settings, "PAC_STAMP_CONCURRENCY", 4)))
            time.sleep(latency / 1000 * -(-documents // width))

    def _simulated_failure(self) -> PacError | None:
        rate = float(getattr(settings, "SANDBOX_PAC_FAILURE_RATE", 0) or 0)
        # Called twice per document: half the simulated failures happen after the stamp was stored (a lost response).
        if rate and random.random() < rate / 2:  # noqa: S311
            return PacError("sandbox_failure", "Falla simulada del PAC sandbox (SANDBOX_PAC_FAILURE_RATE). "
                            "Reintentaremos en unos minutos.", permanent=False)
        return None

    def stamp(self, sealed_xml: bytes) -> StampResult:
        [outcome] = self.stamp_many([sealed_xml])
        if isinstance(outcome, PacError):
            raise outcome
        return outcome

    def stamp_many(self, sealed_xmls: list[bytes]) -> list[StampResult | PacError]:
        """A batch in three queries: the earlier stamps, one INSERT of the new ones, and which of them won."""
        xmls = [bytes(xml) for xml in sealed_xmls]
        digests = [hashlib.sha256(xml).hexdigest() for xml in xmls]
        self._latency(len(xmls))
        earlier = {row.xml_sha256: row for row in SandboxStamp.objects.filter(xml_sha256__in=set(digests))}
        outcomes: list[StampResult | PacError | None] = [None] * len(xmls)
        new: dict[str, SandboxStamp] = {}
        csd = None  # the sandbox's own certificate, read once per batch
        for i, (xml, digest) in enumerate(zip(xmls, digests, strict=True)):
            if digest in earlier:
                outcomes[i] = self._result(earlier[digest], already_stamped=True)  # Finkok's 307
                continue
            if digest in new:
                continue  # the same XML twice in one batch: answered below with the same stamp
            try:
                failure = self._simulated_failure()
                if failure is not None:
                    raise failure
                new[digest] = self._new_stamp(digest, self.check(xml), csd := csd or sandbox_csd())
            except PacError as exc:
                outcomes[i] = exc
        won = self._store(list(new.values()))
        for i, digest in enumerate(digests):
            if outcomes[i] is not None or digest not in new:
                continue
            row = new[digest]
            if digest not in won:  # another worker stored the same XML first: its UUID is the only one
                outcomes[i] = self._result(SandboxStamp.objects.get(xml_sha256=digest), already_stamped=True)
                continue
            outcomes[i] = self._simulated_failure() or StampResult(
                uuid=row.uuid, stamped_xml=row.stamped_xml, stamped_at=row.stamped_at,
                sat_certificate_number=csd.no_certificado, sello_sat=row.sello_sat,
                rfc_prov_certif=RFC_PROV_CERTIF,
            )
        return outcomes

    # --- checks --------------------------------------------------------------------------------------

    def check(self, sealed_xml: bytes):
        """Raise a permanent PacError with the engine's code when a PAC would refuse the document."""
        try:
            parsed = parse_cfdi(sealed_xml)
        except CfdiError as exc:
            raise _permanent("301", f"XML mal formado: {exc}") from exc
        if parsed.namespace != CFDI_NS:
            raise _permanent("301", "Solo se timbran comprobantes CFDI 4.0.")
        if parsed.timbre is not None:
            raise _permanent("707", "El XML ya contiene un timbre fiscal digital.")
        c = parsed.comprobante
        try:
            cert = _certificate(c.certificado or "")
        except (CsdError, binascii.Error, ValueError) as exc:
            raise _permanent("308", "El atributo Certificado no contiene un certificado válido.") from exc
        if not cert.is_csd:
            raise _permanent("306", "El certificado no es de tipo CSD: parece una e.firma (FIEL).")
        if not verify_seal(cadena_original(parsed.root), c.sello or "", cert):
            raise _permanent("CFDI40102", "El resultado de la digestión debe ser igual al resultado de la "
                             "desencripción del sello: el sello no corresponde al contenido o al certificado.")
        errors = errors_only(validate(c, now=timezone.now(), tz=self._time_zone(c.lugar_expedicion), csd=cert))
        if errors:
            raise self._issues_error(errors)
        # Business rules before the schema, as the pipeline does: a catalog error keeps its CFDI40xxx code.
        issues = xsd_issues(parsed.root)
        if issues:
            raise self._issues_error(issues)
        # Last, as SAT's list is asked only about a well-formed document: the demo taxpayers' registered data.
        mismatch = registry_mismatch(c.receptor.rfc, c.receptor.nombre, c.receptor.domicilio_fiscal)
        if mismatch is not None:
            raise _permanent(*mismatch)
        return parsed

    @staticmethod
    def _issues_error(issues) -> PacError:
        first = issues[0]
        messages = list(dict.fromkeys(i.message for i in issues))
        more = f" (y {len(messages) - 3} problemas más)" if len(messages) > 3 else ""
        return _permanent(first.code, " ".join(messages[:3]) + more,
                          raw="\n".join(f"{i.code} {i.path}: {i.message}" for i in issues))

    @staticmethod
    @functools.lru_cache(maxsize=4096)  # SAT's postal-code catalog changes a few times a year
    def _time_zone(postal_code: str) -> str:
        try:
            zone = PostalCode.objects.filter(code=postal_code).values_list("time_zone", flat=True).first()
        except Exception:  # noqa: BLE001 - the catalog is optional (not loaded in a fresh demo)
            zone = None
        return zone or "America/Mexico_City"

    # --- stamping ------------------------------------------------------------------------------------

    def _new_stamp(self, digest: str, parsed, csd) -> SandboxStamp:
        """The stamp row for a checked document (not saved): UUID, TFD, and what cancellation needs later."""
        c = parsed.comprobante
        row = SandboxStamp(
            xml_sha256=digest, uuid=str(uuidlib.uuid4()).upper(), emisor_rfc=c.emisor.rfc,
            receptor_rfc=c.receptor.rfc, total=c.total, kind=c.tipo_de_comprobante,
            related=[{"tipo": group.tipo_relacion, "uuid": u.upper()}
                     for group in (c.relacionados or []) for u in group.uuids],
            stamped_at=timezone.now().replace(microsecond=0),
        )
        row.stamped_xml, row.sello_sat = self._add_tfd(parsed.root, row.uuid, row.stamped_at, c.sello, csd)
        return row

    @staticmethod
    def _store(rows: list[SandboxStamp]) -> set[str]:
        """Insert the new stamps; returns the digests whose row is ours (a concurrent worker may have won some)."""
        if not rows:
            return set()
        if is_postgresql():
            # One prepared INSERT per row, pipelined; a row another worker stored first is skipped, not an error.
            sql = insert_sql(rows[0])[0] + " ON CONFLICT (xml_sha256) DO NOTHING RETURNING xml_sha256"
            with transaction.atomic():  # one commit for the batch
                won = prepared_executemany(sql, [insert_sql(row)[1] for row in rows], returning=True)
            return {digest for (digest,) in won}
        try:
            with transaction.atomic():
                SandboxStamp.objects.bulk_create(rows)
            return {row.xml_sha256 for row in rows}
        except IntegrityError:
            SandboxStamp.objects.bulk_create(rows, ignore_conflicts=True)
            ours = {row.xml_sha256: row.uuid for row in rows}
            stored = SandboxStamp.objects.filter(xml_sha256__in=ours).values_list("xml_sha256", "uuid")
            return {digest for digest, uuid in stored if ours[digest] == uuid}

    @staticmethod
    def _add_tfd(root, uuid: str, at: datetime, sello: str, csd) -> tuple[bytes, str]:
        """The document with its TimbreFiscalDigital, and the SelloSAT. ``root`` is changed in place."""
        tfd = etree.Element(f"{{{TFD_NS}}}TimbreFiscalDigital", nsmap={"tfd": TFD_NS, "xsi": XSI})
        tfd.set(f"{{{XSI}}}schemaLocation", TFD_SCHEMA_LOCATION)
        for name, value in (
            ("Version", "1.1"),
            ("UUID", uuid),
            ("FechaTimbrado", at.astimezone(ZONA_CENTRO).strftime("%Y-%m-%dT%H:%M:%S")),
            ("RfcProvCertif", RFC_PROV_CERTIF),
            ("Leyenda", LEYENDA),
            ("SelloCFD", sello),
            ("NoCertificadoSAT", csd.no_certificado),
        ):
            tfd.set(name, value)
        sello_sat = csd.sign(tfd_cadena_original(tfd).encode("utf-8"))
        tfd.set("SelloSAT", sello_sat)
        complemento = root.find(f"{{{CFDI_NS}}}Complemento")
        if complemento is None:
            complemento = etree.Element(f"{{{CFDI_NS}}}Complemento")
            addenda = root.find(f"{{{CFDI_NS}}}Addenda")
            if addenda is not None:
                addenda.addprevious(complemento)
            else:
                root.append(complemento)
        complemento.append(tfd)
        return to_bytes(root), sello_sat

    @staticmethod
    def _result(row: SandboxStamp, *, already_stamped: bool) -> StampResult:
        xml = bytes(row.stamped_xml)
        tfd = parse_cfdi(xml).timbre
        return StampResult(
            uuid=row.uuid,
            stamped_xml=xml,
            stamped_at=row.stamped_at,
            sat_certificate_number=tfd.no_certificado_sat,
            sello_sat=tfd.sello_sat,
            rfc_prov_certif=RFC_PROV_CERTIF,
            already_stamped=already_stamped,
        )

    # --- cancellation and status ---------------------------------------------------------------------

    def cancel(self, *, uuid: str, motivo: str, replacement_uuid: str | None = None, certificate) -> CancelResult:
        check_cancel_request(uuid, motivo, replacement_uuid)
        self._latency(1)
        failure = _sat_down() or self._simulated_failure()
        if failure is not None:
            raise failure
        uuid = uuid.upper()
        stamp = SandboxStamp.objects.filter(uuid=uuid).first()
        if stamp is None:
            raise _permanent("205", f"El folio fiscal {uuid} no existe en el PAC sandbox.")
        stamp = _accept_if_due(stamp)
        if certificate.rfc != stamp.emisor_rfc:
            return CancelResult(uuid, REJECTED, "203", "El folio fiscal no corresponde al emisor del certificado.")
        if stamp.cancel_status == CANCELLED:
            return CancelResult(uuid, CANCELLED, "202", "El CFDI ya estaba cancelado.", self._acuse(stamp, "202"))
        if stamp.cancel_status == IN_PROCESS:
            return CancelResult(uuid, IN_PROCESS, "202", "Ya hay una solicitud de cancelación en proceso.",
                                self._acuse(stamp, "202"))
        if motivo == "01":
            replacement = SandboxStamp.objects.filter(uuid=replacement_uuid.upper()).first()
            if replacement is None:
                return CancelResult(uuid, REJECTED, "208", "El folio de sustitución no existe.")
            if not any(r["uuid"] == uuid and r["tipo"] == "04" for r in replacement.related):
                return CancelResult(uuid, REJECTED, "212", "El CFDI sustituto no está relacionado con TipoRelacion "
                                    "04 al que se cancela.")
        blockers = _blocking_relations(stamp)
        if blockers:
            return CancelResult(uuid, REJECTED, "no_cancelable", "El CFDI no es cancelable: tiene documentos "
                                f"relacionados vigentes ({', '.join(blockers[:3])}).")
        now = timezone.now()
        acceptance = needs_acceptance(stamp, now)
        new_status = IN_PROCESS if acceptance else CANCELLED
        # A request after a rejection is a new one (RULES.md §6: it has no deadline for the receptor either).
        changed = SandboxStamp.objects.filter(pk=stamp.pk, cancel_status__in=["", REJECTED]).update(
            cancel_status=new_status, cancel_motivo=motivo, cancel_replacement_uuid=(replacement_uuid or "").upper(),
            cancel_requires_acceptance=acceptance, cancel_requested_at=now,
            cancelled_at=None if acceptance else now,
        )
        if not changed:  # a concurrent request won: answer as SAT would to the second one
            return CancelResult(uuid, IN_PROCESS, "202", "Ya hay una solicitud de cancelación en proceso.")
        if acceptance:
            return CancelResult(uuid, IN_PROCESS, "201", "Solicitud de cancelación enviada: el receptor debe "
                                "aceptarla (en el sandbox se acepta sola tras unos minutos).", self._acuse(stamp, "201"))
        return CancelResult(uuid, CANCELLED, "201", "Cancelado sin aceptación.", self._acuse(stamp, "201"))

    @staticmethod
    def _acuse(stamp: SandboxStamp, code: str) -> bytes:
        fecha = timezone.now().astimezone(ZONA_CENTRO).strftime("%Y-%m-%dT%H:%M:%S")
        return (
            f'<?xml version="1.0" encoding="utf-8"?><Acuse Fecha="{fecha}" RfcEmisor="{stamp.emisor_rfc}">'
            f'<Folios xmlns="http://cancelacfd.sat.gob.mx"><UUID>{stamp.uuid}</UUID><EstatusUUID>{code}</EstatusUUID>'
            f"</Folios><!-- PAC sandbox: sin validez fiscal --></Acuse>"
        ).encode()

    def status(self, *, uuid: str, emisor_rfc: str, receptor_rfc: str, total) -> StatusResult:
        failure = _sat_down()
        if failure is not None:
            raise failure
        stamp = SandboxStamp.objects.filter(uuid=uuid.upper()).first()
        if stamp is None or stamp.emisor_rfc != emisor_rfc.upper() or stamp.receptor_rfc != receptor_rfc.upper():
            return StatusResult(estado="No Encontrado", codigo_estatus="N - 602: Comprobante no encontrado.")
        if Decimal(str(total)) != stamp.total:
            return StatusResult(estado="No Encontrado",
                                codigo_estatus="N - 601: La expresión impresa proporcionada no es válida.")
        stamp = _accept_if_due(stamp)
        ok = "S - Comprobante obtenido satisfactoriamente."
        if stamp.cancel_status == CANCELLED:
            how = "Cancelado con aceptación" if stamp.cancel_requires_acceptance else "Cancelado sin aceptación"
            return StatusResult("Cancelado", self._cancelable(stamp), how, ok, "200")
        estatus = {IN_PROCESS: "En proceso", REJECTED: "Solicitud rechazada"}.get(stamp.cancel_status, "")
        return StatusResult("Vigente", self._cancelable(stamp), estatus, ok, "200")

    @staticmethod
    def _cancelable(stamp: SandboxStamp) -> str:
        if _blocking_relations(stamp):
            return "No cancelable"
        if needs_acceptance(stamp, timezone.now()):
            return "Cancelable con aceptación"
        return "Cancelable sin aceptación"

    def ping(self) -> str:
        csd = sandbox_csd()
        return (f"PAC sandbox listo: timbra sin validez fiscal con el certificado {csd.no_certificado}. "
                "Para timbrar ante el SAT elige Finkok o SW Sapien.")


@functools.lru_cache(maxsize=256)
def _certificate(text: str):
    """A PAC sees the same few certificates over and over: each is decoded and parsed once."""
    return read_certificate(base64.b64decode(text, validate=True))
