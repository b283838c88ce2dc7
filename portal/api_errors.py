"""Every ``error.code`` the API can answer, with its HTTP status and what it means: the catalogue that the OpenAPI
description (portal/api_schema.py) prints, so a POS developer can program against the codes.

It cannot drift from the code: tests/contract/test_contract_error_codes.py reads every code the services and
views raise (and the ones built from tables, like ticket eligibility's) and fails on one missing here or on one
listed here that nothing raises any more; and every API test of the suite checks that the codes it meets are
here (tests/conftest.py).
"""

from __future__ import annotations

# code: (HTTP statuses, meaning). Spanish: it is read by the merchant's developers in the API's documentation.
CATALOGUE: dict[str, tuple[tuple[int, ...], str]] = {
    # --- the request itself
    "validation_error": ((400,), "Datos inválidos; `details` dice qué campo y por qué."),
    "malformed_request": ((400,), "El cuerpo no se pudo leer: JSON mal formado, anidado a más de 32 niveles, o un "
                                  "formulario ilegible."),
    "payload_too_large": ((413,), "El cuerpo excede `API_MAX_BODY_BYTES` (64 MB por omisión)."),
    "unsupported_media_type": ((415,), "Content-Type no admitido: usa application/json (o multipart/form-data "
                                       "para el ZIP de un lote)."),
    "not_acceptable": ((406,), "El encabezado Accept no admite JSON."),
    "method_not_allowed": ((405,), "Ese método no existe en esa ruta (el encabezado Allow dice cuáles sí)."),
    "not_found": ((404,), "No existe, o es de otro comercio (nunca se distingue), o la ruta no existe."),
    # --- the API key
    "not_authenticated": ((401,), "Falta la llave de API (Authorization: Bearer … o X-Access-Token)."),
    "invalid_api_key": ((401,), "La llave no existe o el encabezado Authorization no es «Bearer afk_…»."),
    "revoked_api_key": ((401,), "La llave fue revocada en la administración."),
    "inactive_merchant": ((401,), "El comercio de la llave está inactivo."),
    "missing_scope": ((403,), "La llave no tiene el permiso de esa operación (tickets, invoices o webhooks)."),
    "permission_denied": ((403,), "La operación no está permitida para esta llave."),
    "rate_limited": ((429,), "Demasiadas solicitudes con esta llave (`API_RATE_LIMIT`): espera los segundos de "
                             "Retry-After (también en `details.retry_after`)."),
    "service_unavailable": ((503,), "La base de datos o la cola no responden por un momento: repite la solicitud "
                                    "tras Retry-After. Nada quedó a medias."),
    "internal_error": ((500,), "Error inesperado; quedó registrado. Repite más tarde; con Idempotency-Key es "
                               "seguro repetir."),
    # --- tickets
    "invalid_ticket": ((400,), "El ticket tiene datos inválidos; `details` por campo (`lines[2].quantity`…)."),
    "ticket_conflict": ((409,), "Ya existe ese número de ticket en la sucursal con otros datos; `details.fields` "
                                "los nombra y `details.ticket_id` es el guardado."),
    "ticket_not_found": ((404,), "El ticket no existe en tu comercio."),
    "ticket_not_expirable": ((409,), "El ticket ya no está abierto: no hay plazo que terminar."),
    "ticket_not_voidable": ((409,), "El ticket ya se facturó o está en una factura global: cancela la factura."),
    "ticket_void": ((409,), "El ticket está cancelado."),
    "ticket_expired": ((409,), "Terminó el plazo de autofacturación del ticket."),
    "ticket_already_invoiced": ((409,), "El ticket ya está en otra factura; `details.invoice_id` dice cuál."),
    "ticket_in_global_invoice": ((409,), "El ticket ya está en una factura global timbrada."),
    "late_request_refused": ((409,), "El ticket ya está en la factura global y el comercio no emite facturas "
                                     "después de eso."),
    "tickets_busy": ((409,), "Otra solicitud está facturando alguno de esos tickets en este momento; repite en "
                             "unos segundos."),
    "ticket_busy": ((409,), "El ticket está cambiando de estado (facturándose); repite en unos minutos."),
    "ticket_changed": ((409,), "Un ticket cambió de estado mientras se generaba la factura global; repite."),
    "branch_not_found": ((404,), "La sucursal no existe en tu comercio."),
    # --- batches
    "invalid_batch": ((400,), "El cuerpo del lote no es un objeto {batch_id, tickets}."),
    "batch_too_large": ((400,), "El lote trae más tickets de los admitidos (`API_BATCH_MAX_TICKETS`, 10,000)."),
    "empty_zip": ((400,), "El ZIP no trae archivos .json."),
    "invalid_zip": ((400,), "El archivo no es un ZIP legible."),
    "zip_too_large": ((413,), "El ZIP pesa más de `API_ZIP_MAX_BYTES`."),
    "zip_too_many_members": ((413,), "El ZIP trae más archivos de `API_ZIP_MAX_MEMBERS`."),
    "zip_bomb": ((400, 413), "El ZIP se expande demasiado (tamaño descomprimido o proporción de compresión)."),
    "batch_not_found": ((404,), "No existe ese batch_id en tu comercio."),
    "batch_in_progress": ((409,), "Ese batch_id todavía se está procesando; consulta su avance (Retry-After)."),
    "batch_already_received": ((422,), "Ese batch_id ya se recibió y terminó; su resultado sigue en "
                                       "`GET /batches/{batch_id}`."),
    # --- invoices
    "invalid_receptor": ((400,), "Un dato del receptor que el SAT rechazaría; `details.problems` trae `field`, "
                                 "`code` (RFC_FORMATO, CFDI40147…) y `message` de cada uno."),
    "too_many_concepts": ((400,), "La factura tendría más conceptos de los admitidos (`INVOICE_MAX_CONCEPTS`)."),
    "idempotency_key_reused": ((422,), "Esa Idempotency-Key ya creó una factura con otro cuerpo; "
                                       "`details.invoice_id` y `details.fields`."),
    "mixed_currencies": ((422,), "Los tickets tienen monedas distintas: una factura lleva una sola."),
    "mixed_exchange_rates": ((422,), "Los tickets tienen tipos de cambio distintos: una factura lleva uno solo."),
    "no_tickets": ((422,), "No hay tickets que facturar."),
    "issue_at_in_past": ((400,), "La fecha programada (`issue_at`) ya pasó; para facturar ahora, omítela."),
    "issue_at_too_late": ((400,), "Algún ticket no puede esperar hasta `issue_at` (su plazo o el de su factura "
                                  "global terminan antes); `details.latest`."),
    "not_scheduled": ((409,), "Solo se retira una factura programada que aún no se emite."),
    "too_many_tickets": ((422,), "Demasiados tickets en una sola factura."),
    "invoice_not_found": ((404,), "La factura no existe en tu comercio."),
    "not_stamped": ((409,), "La factura aún no está timbrada (o falló): no hay documento que descargar, "
                            "reenviar ni cancelar."),
    "invoice_not_stamped": ((409,), "La factura aún no está timbrada; repite cuando lo esté."),
    "no_email": ((422,), "La factura no tiene correo del receptor: indica `emails`."),
    "invalid_email": ((400,), "Un correo no es válido."),
    "no_recipients": ((400,), "Indica al menos un correo."),
    "too_many_recipients": ((400,), "Demasiados correos para un envío."),
    # --- cancellations and corrections
    "invalid_motive": ((422,), "El motivo de cancelación no es 01, 02, 03 (ni 04 en su caso)."),
    "motive_04_late_request_only": ((422,), "El motivo 04 solo lo aplica la solicitud tardía de una global."),
    "replacement_required": ((422,), "El motivo 01 pide `replacement_id` (usa `reissue` para crearla)."),
    "replacement_not_found": ((404,), "No existe ese CFDI sustituto."),
    "replacement_not_stamped": ((409,), "El CFDI sustituto aún no está timbrado."),
    "replacement_not_related": ((422,), "El sustituto no relaciona esta factura con TipoRelacion 04."),
    "replacement_tickets_differ": ((422,), "El sustituto no ampara los mismos tickets."),
    "replacement_not_allowed": ((422,), "Con ese motivo no se indica sustituto."),
    "invalid_tickets_action": ((422,), "`tickets` debe ser release o void."),
    "tickets_not_allowed": ((422,), "Con el motivo 01 los tickets quedan en el sustituto: no se indica `tickets`."),
    "cancellation_deadline_passed": ((422,), "Terminó el plazo legal para cancelar (CFF 29-A); "
                                             "`details.deadline`."),
    "cancellation_in_progress": ((409,), "La factura ya tiene una cancelación en curso."),
    "already_cancelled": ((409,), "La factura ya está cancelada."),
    "has_related_documents": ((409,), "Otros CFDI vigentes relacionan esta factura (p. ej. notas de crédito): "
                                      "cancélalos primero."),
    "not_reissuable": ((422,), "Solo se corrigen facturas nominativas timbradas."),
    "no_changes": ((422,), "Los datos nuevos son iguales a los de la factura."),
    # --- refunds
    "refund_key_reused": ((422,), "Esa llave de reembolso ya se usó con otro contenido."),
    "refund_exceeds_ticket": ((422,), "El reembolso es mayor que lo que queda del ticket."),
    "refund_exceeds_line": ((422,), "Se devuelve más de lo que queda de un renglón."),
    "line_not_found": ((422,), "El ticket no tiene ese renglón."),
    "refund_not_representable": ((422,), "Con esa devolución los impuestos ya no cuadran dentro de las tolerancias "
                                         "del SAT; devuelve por renglones."),
    "invoice_cancellation_in_progress": ((409,), "La factura del ticket se está cancelando; espera el resultado."),
    # --- global invoices and exports
    "period_not_closed": ((422,), "El periodo aún no termina en la hora local de la sucursal."),
    "invalid_period": ((400, 422), "El periodo no se entiende, es demasiado largo o no va con la periodicidad "
                                   "del comercio."),
    "export_not_ready": ((409,), "La exportación aún no termina; consulta su avance."),
    # --- webhooks
    "too_many_webhooks": ((422,), "Ya tienes el máximo de webhooks por comercio."),
}


def codes_by_status() -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for code, (statuses, _) in CATALOGUE.items():
        for status in statuses:
            out.setdefault(status, []).append(code)
    return dict(sorted(out.items()))


def markdown_table() -> str:
    rows = ["| HTTP | código | significado |", "| --- | --- | --- |"]
    for status, codes in codes_by_status().items():
        for code in codes:
            rows.append(f"| {status} | `{code}` | {CATALOGUE[code][1]} |")
    return "\n".join(rows)
