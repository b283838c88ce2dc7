"""XSD validation against SAT's CFDI 4.0 schema (+ TFD 1.1), compiled once per process."""

from __future__ import annotations

from lxml import etree

from .errors import ValidationIssue
from .resources import cfdi_schema


def xsd_issues(root: etree._Element, schema: etree.XMLSchema | None = None) -> list[ValidationIssue]:
    """Empty when the document is valid; otherwise one issue per schema error (code XSD, line in path)."""
    schema = schema or cfdi_schema()
    if schema.validate(root):
        return []
    return [
        ValidationIssue("XSD", f"línea {e.line}", f"El XML no cumple el esquema del SAT: {e.message}")
        for e in schema.error_log
    ]


def is_xsd_valid(root: etree._Element) -> bool:
    return cfdi_schema().validate(root)
