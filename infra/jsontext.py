"""JSON text from outside (API bodies, ZIP members, stored batch payloads) → Python values, with limits.

Exact decimals (never floats for money), no NaN/Infinity, and a nesting cap checked on the raw bytes before
parsing: the standard decoder recurses once per level, so 100,000 ``[`` would end in a RecursionError (a
500), and a structure just under the interpreter's limit could still blow up later in ``repr`` or
``json.dumps``. Every problem is a ``ValueError`` with a Spanish message.
"""

from __future__ import annotations

import json
from decimal import Decimal

MAX_DEPTH = 32  # a ticket batch is 7 levels deep: {tickets: [{lines: [{taxes: [{…}]}]}]}

_KEEP = b'[]{}"'
_DELETE = bytes(b for b in range(256) if b not in _KEEP)


class JsonTooDeep(ValueError):
    pass


def _reject_constant(name):
    raise ValueError(f"{name} no es un número JSON válido")


def too_deep(data: bytes, limit: int = MAX_DEPTH) -> bool:
    """True if the JSON text nests arrays/objects more than ``limit`` levels (checked in C-speed passes).

    Escapes and string contents are dropped first (so brackets inside strings do not count), then every
    round removes all innermost ``[]`` and ``{}``: each round peels at least one level, so text of depth
    ≤ limit is empty after ``limit`` rounds. Text that stops shrinking is malformed: the parser says how.
    """
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = data.translate(None, _DELETE).replace(b'""', b"")
    if b'"' in skeleton:  # strings that contained brackets
        skeleton = b"".join(skeleton.split(b'"')[::2])
    for _ in range(limit):
        size = len(skeleton)
        skeleton = skeleton.replace(b"[]", b"").replace(b"{}", b"")
        if not skeleton or len(skeleton) == size:
            return False
    return bool(skeleton)


def loads(data: bytes | str, *, decimals: bool = True, encoding: str = "utf-8"):
    """Parse JSON text; ``decimals=False`` keeps DRF's float numbers (for APIs that are not about money)."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if too_deep(data):
        raise JsonTooDeep(f"el JSON anida más de {MAX_DEPTH} niveles de listas u objetos")
    text = data.decode(encoding)
    try:
        if decimals:
            return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError as exc:  # the cap above should make this unreachable; never a 500 if not
        raise JsonTooDeep("el JSON anida demasiados niveles de listas u objetos") from exc
