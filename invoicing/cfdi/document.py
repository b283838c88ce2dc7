"""The CFDI as data: what the builder produces, the validator checks, the renderer writes and the parser reads.

Amounts are Decimals carrying exactly the decimals that are written in the XML (SAT's limits depend on the
number of decimals), so ``fmt(value)`` is the attribute text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(slots=True)
class Traslado:
    base: Decimal
    impuesto: str
    tipo_factor: str
    tasa_o_cuota: Decimal | None = None
    importe: Decimal | None = None


@dataclass(slots=True)
class Retencion:
    base: Decimal
    impuesto: str
    tipo_factor: str
    tasa_o_cuota: Decimal
    importe: Decimal


@dataclass(slots=True)
class Concepto:
    clave_prod_serv: str
    cantidad: Decimal
    clave_unidad: str
    descripcion: str
    valor_unitario: Decimal
    importe: Decimal
    objeto_imp: str
    no_identificacion: str | None = None
    unidad: str | None = None
    descuento: Decimal | None = None
    traslados: list[Traslado] = field(default_factory=list)
    retenciones: list[Retencion] = field(default_factory=list)


@dataclass(slots=True)
class TrasladoResumen:
    base: Decimal
    impuesto: str
    tipo_factor: str
    tasa_o_cuota: Decimal | None = None
    importe: Decimal | None = None


@dataclass(slots=True)
class RetencionResumen:
    impuesto: str
    importe: Decimal


@dataclass(slots=True)
class Impuestos:
    traslados: list[TrasladoResumen] = field(default_factory=list)
    retenciones: list[RetencionResumen] = field(default_factory=list)
    total_traslados: Decimal | None = None
    total_retenidos: Decimal | None = None


@dataclass(slots=True)
class Emisor:
    rfc: str
    nombre: str
    regimen_fiscal: str
    fac_atr_adquirente: str | None = None


@dataclass(slots=True)
class Receptor:
    rfc: str
    nombre: str
    domicilio_fiscal: str
    regimen_fiscal: str
    uso_cfdi: str
    residencia_fiscal: str | None = None
    num_reg_id_trib: str | None = None


@dataclass(slots=True)
class InformacionGlobal:
    periodicidad: str
    meses: str
    anio: str


@dataclass(slots=True)
class CfdiRelacionados:
    tipo_relacion: str
    uuids: list[str]


@dataclass(slots=True)
class Comprobante:
    fecha: str
    subtotal: Decimal
    moneda: str
    total: Decimal
    tipo_de_comprobante: str
    lugar_expedicion: str
    emisor: Emisor
    receptor: Receptor
    conceptos: list[Concepto]
    version: str = "4.0"
    exportacion: str = "01"
    serie: str | None = None
    folio: str | None = None
    forma_pago: str | None = None
    metodo_pago: str | None = None
    condiciones_de_pago: str | None = None
    descuento: Decimal | None = None
    tipo_cambio: Decimal | None = None
    confirmacion: str | None = None
    informacion_global: InformacionGlobal | None = None
    relacionados: list[CfdiRelacionados] = field(default_factory=list)
    impuestos: Impuestos | None = None
    no_certificado: str = ""
    certificado: str = ""
    sello: str = ""


@dataclass(slots=True)
class Timbre:
    """TimbreFiscalDigital 1.1 added by the PAC."""

    version: str
    uuid: str
    fecha_timbrado: str
    rfc_prov_certif: str
    sello_cfd: str
    no_certificado_sat: str
    sello_sat: str
    leyenda: str | None = None
