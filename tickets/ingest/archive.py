"""A ZIP of ticket .json files, read safely: size, member-count and compression-ratio caps, no path games.

Nothing is extracted to disk; members are read in memory, each bounded by its declared size. Whole-archive
problems (not a ZIP, too big, too many members, a ZIP bomb) refuse the upload; a bad member (not .json,
unreadable JSON, a path with ``..``) is reported on its own and never rejects the good ones.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from django.conf import settings

from infra.errors import InvalidInput, PayloadTooLarge
from infra.jsontext import loads

MAX_MEMBER_BYTES = 4 * 1024 * 1024


@dataclass(slots=True)
class Member:
    name: str
    payload: dict | None = None
    error: str = ""


def _unsafe_name(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts or "\x00" in name


def _ignored(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return name.startswith("__MACOSX/") or base.startswith("._") or base in (".DS_Store", "Thumbs.db")


def open_archive(data: bytes) -> zipfile.ZipFile:
    if len(data) > settings.API_ZIP_MAX_BYTES:
        raise PayloadTooLarge(f"El ZIP pesa más de {settings.API_ZIP_MAX_BYTES // (1024 * 1024)} MB.",
                              code="zip_too_large")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise InvalidInput("El archivo no es un ZIP válido.", code="invalid_zip",
                           details={"file[0]": [str(exc)]}) from exc
    infos = [i for i in archive.infolist() if not i.is_dir()]
    if len(infos) > settings.API_ZIP_MAX_MEMBERS:
        raise PayloadTooLarge(f"El ZIP tiene {len(infos)} archivos; el máximo es {settings.API_ZIP_MAX_MEMBERS}.",
                              code="zip_too_many_members")
    declared = sum(i.file_size for i in infos)
    if declared > settings.API_ZIP_MAX_UNCOMPRESSED:
        raise PayloadTooLarge("El contenido descomprimido del ZIP excede el máximo permitido.", code="zip_bomb")
    for info in infos:
        if info.file_size > 1024 and info.file_size > settings.API_ZIP_MAX_RATIO * max(info.compress_size, 1):
            raise InvalidInput(
                f"«{info.filename[:100]}» se comprime más de {settings.API_ZIP_MAX_RATIO}:1: el ZIP parece una "
                "bomba de descompresión y se rechaza.", code="zip_bomb")
    return archive


def member_count(data: bytes) -> int:
    return sum(1 for i in open_archive(data).infolist() if not i.is_dir() and not _ignored(i.filename))


def read_members(data: bytes) -> list[Member]:
    """Every file of the archive (any folder depth), in archive order, parsed or with its problem."""
    archive = open_archive(data)
    out = []
    budget = settings.API_ZIP_MAX_UNCOMPRESSED
    for info in archive.infolist():
        name = info.filename
        if info.is_dir() or _ignored(name):
            continue
        if _unsafe_name(name):
            out.append(Member(name, error="Nombre de archivo no permitido (ruta absoluta o con «..»)."))
            continue
        if info.flag_bits & 0x1:
            out.append(Member(name, error="El archivo está cifrado."))
            continue
        if not name.lower().endswith(".json"):
            out.append(Member(name, error="No es un archivo .json."))
            continue
        if info.file_size > MAX_MEMBER_BYTES:
            out.append(Member(name, error=f"Pesa más de {MAX_MEMBER_BYTES // (1024 * 1024)} MB."))
            continue
        try:
            with archive.open(info) as fh:
                raw = fh.read(min(info.file_size, budget) + 1)
        except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as exc:
            out.append(Member(name, error=f"No se pudo descomprimir: {exc}"))
            continue
        budget -= len(raw)
        if len(raw) > info.file_size or budget < 0:
            raise InvalidInput("El ZIP miente sobre el tamaño de su contenido.", code="zip_bomb")
        try:
            payload = loads(raw, encoding="utf-8-sig")
        except ValueError as exc:
            out.append(Member(name, error=f"JSON inválido: {exc}"))
            continue
        out.append(Member(name, payload=payload))
    return out
