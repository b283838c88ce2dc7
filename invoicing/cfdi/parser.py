"""Read CFDI 4.0 (and 3.3, for lines in POS-built XML) with its TimbreFiscalDigital, safely.

Untrusted input: no DTD, no entities, no network, a size cap. Amounts keep the decimals as written.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from lxml import etree

from . import document as d
from .errors import CfdiError, ValidationIssue
from .resources import CFDI33_NS, CFDI_NS, TFD_NS

MAX_XML_BYTES = 20 * 1024 * 1024


class ParseError(CfdiError):
    def __init__(self, message: str, code: str = "XML"):
        super().__init__([ValidationIssue(code, "xml", message)])


@dataclass
class ParsedCfdi:
    root: etree._Element
    comprobante: d.Comprobante
    timbre: d.Timbre | None
    namespace: str

    @property
    def version(self) -> str:
        return self.comprobante.version

    @property
    def tfd_element(self) -> etree._Element | None:
        return self.root.find(f"{{{self.namespace}}}Complemento/{{{TFD_NS}}}TimbreFiscalDigital")


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False,
        remove_blank_text=False,
    )


def parse_xml(data: bytes, *, max_bytes: int = MAX_XML_BYTES) -> etree._Element:
    if len(data) > max_bytes:
        raise ParseError(f"El XML pesa más de {max_bytes // (1024 * 1024)} MB.")
    try:
        tree = etree.fromstring(data, _safe_parser()).getroottree()
    except etree.XMLSyntaxError as exc:
        raise ParseError(f"El archivo no es un XML bien formado: {exc.msg}") from exc
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise ParseError("El XML declara un DTD o entidades, lo cual no se admite en un CFDI.")
    return tree.getroot()


def _dec(value: str | None, path: str) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value.strip())
    except InvalidOperation as exc:
        raise ParseError(f"{path}: «{value}» no es un número.") from exc


def parse_cfdi(data: bytes, *, max_bytes: int = MAX_XML_BYTES) -> ParsedCfdi:
    root = parse_xml(data, max_bytes=max_bytes)
    ns = etree.QName(root).namespace
    if ns not in (CFDI_NS, CFDI33_NS) or etree.QName(root).localname != "Comprobante":
        raise ParseError("El XML no es un CFDI (se esperaba cfdi:Comprobante versión 4.0 o 3.3).")
    return ParsedCfdi(root, comprobante_from_element(root), _timbre(root, ns), ns)


def comprobante_from_element(root: etree._Element) -> d.Comprobante:
    ns = etree.QName(root).namespace
    q = f"{{{ns}}}"
    g = root.get
    emisor_el = root.find(q + "Emisor")
    receptor_el = root.find(q + "Receptor")
    if emisor_el is None or receptor_el is None:
        raise ParseError("El CFDI no tiene Emisor o Receptor.")
    info = root.find(q + "InformacionGlobal")
    conceptos = []
    for k in root.iterfind(f"{q}Conceptos/{q}Concepto"):
        kg = k.get
        traslados = [
            d.Traslado(
                _dec(t.get("Base"), "Traslado/@Base"), t.get("Impuesto"), t.get("TipoFactor"),
                _dec(t.get("TasaOCuota"), "Traslado/@TasaOCuota"), _dec(t.get("Importe"), "Traslado/@Importe"),
            )
            for t in k.iterfind(f"{q}Impuestos/{q}Traslados/{q}Traslado")
        ]
        retenciones = [
            d.Retencion(
                _dec(t.get("Base"), "Retencion/@Base"), t.get("Impuesto"), t.get("TipoFactor"),
                _dec(t.get("TasaOCuota"), "Retencion/@TasaOCuota"), _dec(t.get("Importe"), "Retencion/@Importe"),
            )
            for t in k.iterfind(f"{q}Impuestos/{q}Retenciones/{q}Retencion")
        ]
        conceptos.append(
            d.Concepto(
                clave_prod_serv=kg("ClaveProdServ", ""),
                no_identificacion=kg("NoIdentificacion"),
                cantidad=_dec(kg("Cantidad", "0"), "Concepto/@Cantidad"),
                clave_unidad=kg("ClaveUnidad", ""),
                unidad=kg("Unidad"),
                descripcion=kg("Descripcion", ""),
                valor_unitario=_dec(kg("ValorUnitario", "0"), "Concepto/@ValorUnitario"),
                importe=_dec(kg("Importe", "0"), "Concepto/@Importe"),
                descuento=_dec(kg("Descuento"), "Concepto/@Descuento"),
                # CFDI 3.3 had no ObjetoImp: taxes present means "sí objeto".
                objeto_imp=kg("ObjetoImp") or ("02" if traslados or retenciones else "01"),
                traslados=traslados,
                retenciones=retenciones,
            )
        )
    impuestos = None
    imp = root.find(q + "Impuestos")
    if imp is not None:
        impuestos = d.Impuestos(
            traslados=[
                d.TrasladoResumen(
                    _dec(t.get("Base", "0"), "Impuestos/Traslado/@Base"), t.get("Impuesto"), t.get("TipoFactor"),
                    _dec(t.get("TasaOCuota"), "TasaOCuota"), _dec(t.get("Importe"), "Importe"),
                )
                for t in imp.iterfind(f"{q}Traslados/{q}Traslado")
            ],
            retenciones=[
                d.RetencionResumen(t.get("Impuesto"), _dec(t.get("Importe"), "Importe"))
                for t in imp.iterfind(f"{q}Retenciones/{q}Retencion")
            ],
            total_traslados=_dec(imp.get("TotalImpuestosTrasladados"), "TotalImpuestosTrasladados"),
            total_retenidos=_dec(imp.get("TotalImpuestosRetenidos"), "TotalImpuestosRetenidos"),
        )
    rg = receptor_el.get
    eg = emisor_el.get
    return d.Comprobante(
        version=g("Version", ""),
        serie=g("Serie"),
        folio=g("Folio"),
        fecha=g("Fecha", ""),
        sello=g("Sello", ""),
        forma_pago=g("FormaPago"),
        no_certificado=g("NoCertificado", ""),
        certificado=g("Certificado", ""),
        condiciones_de_pago=g("CondicionesDePago"),
        subtotal=_dec(g("SubTotal", "0"), "SubTotal"),
        descuento=_dec(g("Descuento"), "Descuento"),
        moneda=g("Moneda", ""),
        tipo_cambio=_dec(g("TipoCambio"), "TipoCambio"),
        total=_dec(g("Total", "0"), "Total"),
        tipo_de_comprobante=g("TipoDeComprobante", ""),
        exportacion=g("Exportacion", ""),
        metodo_pago=g("MetodoPago"),
        lugar_expedicion=g("LugarExpedicion", ""),
        confirmacion=g("Confirmacion"),
        informacion_global=(
            d.InformacionGlobal(info.get("Periodicidad", ""), info.get("Meses", ""), info.get("Año", ""))
            if info is not None
            else None
        ),
        relacionados=[
            d.CfdiRelacionados(rel.get("TipoRelacion", ""), [x.get("UUID", "") for x in rel.iterfind(q + "CfdiRelacionado")])
            for rel in root.iterfind(q + "CfdiRelacionados")
        ],
        emisor=d.Emisor(eg("Rfc", ""), eg("Nombre", ""), eg("RegimenFiscal", ""), eg("FacAtrAdquirente")),
        receptor=d.Receptor(
            rg("Rfc", ""), rg("Nombre", ""), rg("DomicilioFiscalReceptor", ""), rg("RegimenFiscalReceptor", ""),
            rg("UsoCFDI", ""), rg("ResidenciaFiscal"), rg("NumRegIdTrib"),
        ),
        conceptos=conceptos,
        impuestos=impuestos,
    )


def _timbre(root: etree._Element, ns: str) -> d.Timbre | None:
    tfd = root.find(f"{{{ns}}}Complemento/{{{TFD_NS}}}TimbreFiscalDigital")
    if tfd is None:
        return None
    g = tfd.get
    return d.Timbre(
        version=g("Version", ""),
        uuid=g("UUID", ""),
        fecha_timbrado=g("FechaTimbrado", ""),
        rfc_prov_certif=g("RfcProvCertif", ""),
        sello_cfd=g("SelloCFD", ""),
        no_certificado_sat=g("NoCertificadoSAT", ""),
        sello_sat=g("SelloSAT", ""),
        leyenda=g("Leyenda"),
    )
