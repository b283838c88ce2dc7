"""JSON bodies read by DRF serializers take each value in the JSON type the schema gives it, and nothing else.

DRF coerces: a BooleanField reads 0, "no" or "off" as false, a CharField reads 5 as "5", an IntegerField reads
"5" as 5. The OpenAPI schema (generated from the same serializers) says boolean, string, integer; a client that
follows it must not be surprised, and one that does not follow it gets a 400 naming the field, not a guess.
Query strings are text by nature and keep DRF's parsing.
"""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework import serializers

EXPECTED = {bool: "true o false", int: "un número entero", str: "texto", list: "una lista"}


def _expected(field: serializers.Field) -> type | None:
    if isinstance(field, serializers.BooleanField):
        return bool
    if isinstance(field, serializers.IntegerField):
        return int
    if isinstance(field, (serializers.CharField, serializers.DecimalField, serializers.DateField,
                          serializers.DateTimeField)):
        return str  # the schema gives decimals and dates as strings
    if isinstance(field, serializers.ChoiceField) and all(isinstance(c, str) for c in field.choices):
        return str
    if isinstance(field, serializers.ListField):
        return list
    return None


def _wrong(field: serializers.Field, value) -> str | None:
    if value is None:
        return None  # the field itself says whether null is allowed
    kind = _expected(field)
    if kind is None:
        return None
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if ok and kind is list and getattr(field, "child", None) is not None:
        for item in value:
            problem = _wrong(field.child, item)
            if problem:
                return problem
    return None if ok else f"Tipo inválido: se espera {EXPECTED[kind]}."


class StrictJsonSerializer(serializers.Serializer):
    """Base of the request serializers of JSON bodies (nested ones too)."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            errors = {}
            for field in self.fields.values():
                if not field.read_only and field.source != "*" and field.field_name in data:
                    problem = _wrong(field, data[field.field_name])
                    if problem:
                        errors[field.field_name] = [problem]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)
