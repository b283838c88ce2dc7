"""HTTP POST to a merchant's URL, with an SSRF guard at the socket level.

The guard runs where the connection is opened: the host name is resolved once, every address it resolves to is
checked (private, loopback, link-local, multicast, reserved… are refused unless WEBHOOK_ALLOW_PRIVATE is set:
DEBUG does not open them, since demo installations are reachable too),
and the socket connects to the address that was checked, so a DNS answer that changes between the check and the
connection (rebinding) cannot slip through. TLS still verifies the certificate against the host name.
Redirects are not followed and environment proxies are ignored, for the same reason.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError


class SendError(Exception):
    """The request did not get an HTTP answer (timeout, connection refused, DNS…): worth retrying."""


class Refused(Exception):
    """We will not send to this URL (scheme, or an address that is not public): retrying will not help."""


def private_allowed() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE", False))


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one leads to (mapped, 6to4, NAT64, IPv4-compatible), if any."""
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if any(ip in net for net in _NAT64) or ip in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None and not _is_public(embedded):
            return False
    return ip.is_global and not ip.is_multicast


def vetted_address(host: str, port: int) -> str:
    """The first address of ``host`` after checking all of them; raises Refused or socket.gaierror."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not private_allowed():
        for address in addresses:
            if not _is_public(ipaddress.ip_address(address.split("%")[0])):
                raise Refused(f"La URL apunta a una dirección no pública ({address}); no se envió.")
    return addresses[0]


class _GuardedMixin:
    def _new_conn(self):
        try:
            address = vetted_address(self._dns_host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        original, self._dns_host = self._dns_host, address
        try:
            return super()._new_conn()
        finally:
            self._dns_host = original


class _GuardedHTTPConnection(_GuardedMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedMixin, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies from the environment: the guard must see the real destination
    adapter = _GuardedAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def post(url: str, *, body: bytes, headers: dict, timeout: float, max_bytes: int = 1024) -> tuple[int, str]:
    """POST ``body``; returns (status code, the first ``max_bytes`` of the answer as text)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise Refused("La URL del webhook no es válida.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("Solo se envían webhooks a URLs http:// o https://.")
    try:
        with _session() as session:
            response = session.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False,
                                    stream=True)
            try:
                raw = response.raw.read(max_bytes, decode_content=True) or b""
            except Exception:  # noqa: BLE001 - an unreadable body still has a status code
                raw = b""
            finally:
                response.close()
    except Refused:
        raise
    except requests.Timeout as exc:
        raise SendError(f"Sin respuesta en {timeout:g} s (tiempo agotado).") from exc
    except requests.RequestException as exc:
        raise SendError(f"No se pudo conectar: {type(exc).__name__}.") from exc
    except Exception as exc:  # anything else still counts as one failed attempt, never a stuck delivery
        raise SendError(f"Error al enviar: {type(exc).__name__}.") from exc
    return response.status_code, raw[:max_bytes].decode("utf-8", errors="replace")
