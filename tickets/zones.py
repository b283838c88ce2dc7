"""Where a branch is, fiscally: its time zone and whether it is in the border region, from SAT's c_CodigoPostal.

A CFDI's Fecha is the local time of its LugarExpedicion (the branch's postal code, RULES.md §1.1/§8), and a
factura global's period is counted in that same local time; IVA at 8 % needs a postal code SAT flags as
border region. Both come from the postal-code catalog that ``manage.py load_sat_catalogs`` loads
(tickets.catalogs.PostalCode). A postal code the catalog does not know (or a catalog never loaded) falls back
to the merchant's time zone and is *not* border region.

Look-ups are cached per process for a few minutes: the catalog changes a few times a year, and every invoice
built and every ticket batch asks.
"""

from __future__ import annotations

import threading
import time
import zoneinfo
from dataclasses import dataclass

from tickets.catalogs import PostalCode

CACHE_SECONDS = 300


@dataclass(frozen=True, slots=True)
class PostalInfo:
    """What SAT's catalog says of a postal code; ``known`` is False when it is not in the (loaded) catalog."""

    code: str
    time_zone: str | None
    border: bool
    known: bool


_cache: dict[str, tuple[float, PostalInfo]] = {}
_lock = threading.Lock()


def cache_clear() -> None:
    """Forget cached look-ups (after loading a new catalog, and in tests)."""
    with _lock:
        _cache.clear()


def postal_infos(codes) -> dict[str, PostalInfo]:
    """PostalInfo of each code, one query for those not cached."""
    now = time.monotonic()
    out: dict[str, PostalInfo] = {}
    missing = []
    with _lock:
        for code in set(codes):
            hit = _cache.get(code)
            if hit is not None and hit[0] > now:
                out[code] = hit[1]
            else:
                missing.append(code)
    if missing:
        rows = PostalCode.objects.filter(pk__in=missing).values_list("code", "time_zone", "border_incentive")
        found = {code: PostalInfo(code, tz or None, border == "1", True) for code, tz, border in rows}
        with _lock:
            for code in missing:
                info = found.get(code) or PostalInfo(code, None, False, False)
                _cache[code] = (now + CACHE_SECONDS, info)
                out[code] = info
    return out


def postal_info(code: str) -> PostalInfo:
    return postal_infos([code])[code]


def catalog_loaded() -> bool:
    return PostalCode.objects.exists()


def zone_name(postal_code: str, default: str) -> str:
    """IANA zone of a postal code (LugarExpedicion), or ``default`` (the merchant's) when SAT's catalog does not
    know it."""
    info = postal_info(postal_code)
    if info.time_zone:
        try:
            zoneinfo.ZoneInfo(info.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return default
        return info.time_zone
    return default


def branch_zone_name(branch) -> str:
    """The zone a branch's CFDI Fecha and global periods are written in (``branch.merchant`` is read)."""
    return zone_name(branch.postal_code, branch.merchant.time_zone)


def branch_zone(branch) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(branch_zone_name(branch))


def branch_zones(merchant, branches) -> dict[str, list]:
    """Branches grouped by time zone name (one query for all their postal codes)."""
    branches = list(branches)
    infos = postal_infos(b.postal_code for b in branches)
    groups: dict[str, list] = {}
    for b in branches:
        tz = infos[b.postal_code].time_zone or merchant.time_zone
        groups.setdefault(tz, []).append(b)
    return groups
