"""SSRF guard: private targets only with WEBHOOK_ALLOW_PRIVATE, whatever DEBUG says; checked on the address the
name resolves to, on IPv6 forms that lead to an IPv4 one, and never bypassed through a redirect."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from invoicing.webhooks import transport
from invoicing.webhooks.models import WebhookDelivery
from invoicing.webhooks.services import webhook_deliver, webhook_emit, webhook_endpoint_create

pytestmark = pytest.mark.django_db


def _deliver_all(merchant) -> list[WebhookDelivery]:
    deliveries = webhook_emit(merchant_id=merchant.pk, event="invoice.stamped", data={"id": 7})
    for delivery in deliveries:
        webhook_deliver(delivery_id=delivery.pk)
    return list(WebhookDelivery.objects.filter(pk__in=[d.pk for d in deliveries]).select_related("endpoint"))


def test_debug_does_not_open_loopback_or_private_addresses(merchant, receiver, settings):
    settings.DEBUG = True  # `make run`'s default
    settings.WEBHOOK_ALLOW_PRIVATE = False
    receiver.body = b'{"secret": "internal answer"}'
    port = receiver.url.split(":")[2].split("/")[0]
    for url in (receiver.url, f"http://localhost:{port}/hooks", f"http://[::ffff:127.0.0.1]:{port}/hooks",
                "http://10.0.0.5/hook", "http://169.254.169.254/latest/meta-data/"):
        webhook_endpoint_create(merchant=merchant, url=url)
    for delivery in _deliver_all(merchant):
        assert delivery.status == WebhookDelivery.Status.FAILED, delivery.endpoint.url
        assert "no pública" in delivery.response_excerpt and "internal answer" not in delivery.response_excerpt
    assert receiver.requests == []


def test_a_public_name_that_resolves_to_loopback_is_refused(merchant, receiver, settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    real_getaddrinfo = socket.getaddrinfo

    def rebinding_dns(host, port, *args, **kwargs):
        if host == "hooks.example.com":  # a public-looking name whose DNS answers 127.0.0.1
            return real_getaddrinfo("127.0.0.1", port, *args, **kwargs)
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(transport.socket, "getaddrinfo", rebinding_dns)
    port = receiver.url.split(":")[2].split("/")[0]
    webhook_endpoint_create(merchant=merchant, url=f"http://hooks.example.com:{port}/hooks")
    [delivery] = _deliver_all(merchant)
    assert delivery.status == WebhookDelivery.Status.FAILED and "127.0.0.1" in delivery.response_excerpt
    assert receiver.requests == []


@pytest.mark.parametrize("address", ["::127.0.0.1", "64:ff9b::7f00:1", "64:ff9b::a00:5", "2002:7f00:1::1",
                                     "::ffff:192.168.1.1", "0.0.0.0", "100.64.0.1", "198.18.0.1", "fd00::1"])
def test_addresses_that_lead_to_private_ipv4_are_not_public(address, settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    monkeypatch.setattr(transport.socket, "getaddrinfo",
                        lambda host, port, **kw: [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port))])
    with pytest.raises(transport.Refused):
        transport.vetted_address("hooks.example.com", 443)


def test_public_addresses_pass_the_guard(settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    for address in ("8.8.8.8", "2001:4860:4860::8888", "64:ff9b::808:808"):
        monkeypatch.setattr(transport.socket, "getaddrinfo",
                            lambda host, port, a=address, **kw: [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port))])
        assert transport.vetted_address("hooks.example.com", 443) == address


def test_a_redirect_is_never_followed(merchant, receiver, allow_private):
    """A receiver cannot send our POST (and its answer) on to another address, private or not."""

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            self.send_response(307)
            self.send_header("Location", receiver.url)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        webhook_endpoint_create(merchant=merchant, url=f"http://127.0.0.1:{server.server_address[1]}/hook")
        [delivery] = _deliver_all(merchant)
    finally:
        server.shutdown()
        server.server_close()
    assert delivery.last_status_code == 307 and delivery.status != WebhookDelivery.Status.DELIVERED
    assert receiver.requests == []
