"""A very small SOAP 1.1 client: enough for Finkok and SAT's ConsultaCFDIService, no WSDL needed."""

from __future__ import annotations

from xml.sax.saxutils import escape

import requests
from lxml import etree

from .base import malformed, parse_xml, server_error, timeout, transport_error

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


def envelope(operation: str, namespace: str, children: list[tuple[str, str]] | str) -> bytes:
    """``<op xmlns=ns><child>text</child>…</op>`` inside a SOAP envelope; children may be pre-built XML."""
    if isinstance(children, str):
        body = children
    else:
        body = "".join(f"<ns:{name}>{escape(value)}</ns:{name}>" for name, value in children)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns:ns="{namespace}">'
        f"<soapenv:Body><ns:{operation}>{body}</ns:{operation}></soapenv:Body></soapenv:Envelope>"
    ).encode()


def call(
    provider: str, url: str, action: str, body: bytes, *, session: requests.Session | None = None, verify=True
) -> etree._Element:
    """POST the envelope; return the parsed Envelope. Transport trouble and 5xx raise transient PacErrors."""
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": action}
    try:
        response = (session or requests).post(url, data=body, headers=headers, timeout=timeout(), verify=verify)
    except requests.RequestException as exc:
        raise transport_error(provider, exc) from exc
    content = response.content
    if response.status_code >= 500 or response.status_code != 200:
        # A SOAP fault (HTTP 500) carries raw server text: keep it in .raw, never show it to the merchant.
        raise server_error(provider, response.status_code, _fault_text(content) or content)
    try:
        root = parse_xml(content)
    except etree.XMLSyntaxError as exc:
        raise malformed(provider, content) from exc
    if root.find(f"{{{SOAP_ENV}}}Body") is None:
        raise malformed(provider, content, "sin cuerpo SOAP")
    return root


def _fault_text(content: bytes) -> str:
    try:
        root = parse_xml(content)
    except etree.XMLSyntaxError:
        return ""
    fault = first(root, "Fault")
    if fault is None:
        return ""
    return f"{text(fault, 'faultcode')}: {text(fault, 'faultstring')}"


def first(node: etree._Element, local_name: str) -> etree._Element | None:
    """First descendant with this local name, whatever its namespace prefix."""
    found = node.xpath(f".//*[local-name()='{local_name}']")
    return found[0] if found else None


def children(node: etree._Element, local_name: str) -> list[etree._Element]:
    return node.xpath(f".//*[local-name()='{local_name}']")


def text(node: etree._Element | None, local_name: str) -> str:
    if node is None:
        return ""
    found = first(node, local_name)
    return (found.text or "").strip() if found is not None else ""
