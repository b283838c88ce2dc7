"""Lookup outcomes, the receipt's QR link, the cart, rate limits and isolation between merchants."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from invoicing.services.issue import ReceptorData, invoice_issue
from portal.shopper.lookup import NOT_FOUND_MESSAGE, TOTAL_MISMATCH_MESSAGE
from tickets.models import Ticket

RECEPTOR = ReceptorData(rfc="XIQB891116QE4", name="KARLA FUENTE NOLASCO", tax_regime="605",
                        postal_code="01160", cfdi_use="S01", emails=("karla@example.com",))


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def fresh(branch, make_ticket):
    return make_ticket(branch, number="A100", total=Decimal("250.50"))


def local_day(ticket):
    return timezone.localtime(ticket.sold_at, ticket.merchant.tzinfo).date().isoformat()


def lookup(client, merchant, number, total, day, ip="127.0.0.1", **extra):
    return client.post(f"/{merchant.slug}/", {"number": number, "total": total, "sold_on": day, **extra},
                       REMOTE_ADDR=ip)


def test_landing_page_shows_policy_help_and_form_under_50_kb(client, merchant):
    merchant.self_invoice_window = "days"
    merchant.self_invoice_days = 15
    merchant.save()
    response = client.get(f"/{merchant.slug}/")
    html = response.content.decode()
    assert "hasta 15 días después de la fecha del ticket" in html
    assert "<svg" in html and "Número de ticket" in html and "Total pagado" in html
    assert 'for="id_number"' in html and 'aria-describedby="id_number-hint"' in html
    css = client.get("/static/portal/portal.css")
    assert len(response.content) + len(b"".join(css.streaming_content)) < 50_000


def test_found_ticket_goes_to_the_cart_without_exposing_its_id(client, merchant, fresh):
    response = lookup(client, merchant, "a100", "$250.50", local_day(fresh))
    assert response.status_code == 302 and response.url == f"/{merchant.slug}/carrito/"
    page = client.get(response.url).content.decode()
    assert "A100" in page and "250.50" in page
    assert f'value="{fresh.pk}"' not in page and fresh.public_code in page


def test_miss_answers_the_same_whatever_field_was_wrong(client, merchant, fresh):
    day = local_day(fresh)
    other_day = (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat()
    wrong_number = lookup(client, merchant, "A999", "250.50", day).content.decode()
    wrong_date = lookup(client, merchant, "A100", "250.50", other_day).content.decode()
    assert NOT_FOUND_MESSAGE in wrong_number
    def strip(html):  # the echoed input and the CSRF token differ; nothing else may
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html.replace(other_day, day).replace("A999", "A100"))

    assert strip(wrong_number) == strip(wrong_date)


def test_wrong_total_with_right_number_and_date_says_total_does_not_match(client, merchant, fresh):
    html = lookup(client, merchant, "A100", "250.00", local_day(fresh)).content.decode()
    assert TOTAL_MISMATCH_MESSAGE in html


def test_wrong_total_and_wrong_date_is_a_plain_miss(client, merchant, fresh):
    html = lookup(client, merchant, "A100", "250.00", "2020-01-01").content.decode()
    assert NOT_FOUND_MESSAGE in html and TOTAL_MISMATCH_MESSAGE not in html


def test_expired_ticket_says_the_date_it_expired(client, merchant, branch, make_ticket):
    sold = timezone.now() - dt.timedelta(days=70)
    ticket = make_ticket(branch, number="OLD1", total=Decimal("10.00"), sold_at=sold)
    html = lookup(client, merchant, "OLD1", "10", local_day(ticket)).content.decode()
    expired = timezone.localtime(ticket.expires_at, merchant.tzinfo).strftime("%d/%m/%Y")
    assert f"venció el {expired}" in html


def test_void_ticket_is_explained(client, merchant, fresh):
    Ticket.objects.filter(pk=fresh.pk).update(status=Ticket.Status.VOID)
    html = lookup(client, merchant, "A100", "250.50", local_day(fresh)).content.decode()
    assert "fue cancelado en la tienda" in html


def test_ticket_in_a_global_invoice_is_explained_when_the_merchant_refuses_late_requests(client, merchant, fresh):
    merchant.late_request_policy = merchant.LatePolicy.REFUSE
    merchant.save()
    Ticket.objects.filter(pk=fresh.pk).update(status=Ticket.Status.GLOBALIZED)
    html = lookup(client, merchant, "A100", "250.50", local_day(fresh)).content.decode()
    assert "factura global" in html and "ya no se puede facturar en línea" in html


def test_ticket_in_a_global_invoice_goes_to_the_cart_under_a_late_request_policy(client, merchant, fresh):
    assert merchant.late_request_policy == merchant.LatePolicy.CREDIT_NOTE
    Ticket.objects.filter(pk=fresh.pk).update(status=Ticket.Status.GLOBALIZED)
    response = lookup(client, merchant, "A100", "250.50", local_day(fresh))
    assert response.status_code == 302 and response.url.endswith("/carrito/")


def test_already_invoiced_ticket_asks_for_the_rfc_and_shows_the_email_masked(client, merchant, fresh):
    invoice_issue(merchant=merchant, ticket_ids=[fresh.pk], receptor=RECEPTOR)
    response = lookup(client, merchant, "A100", "250.50", local_day(fresh))
    assert response.url == f"/{merchant.slug}/facturado/{fresh.public_code}/"
    html = client.get(response.url).content.decode()
    assert "ya fue facturado" in html and "RFC con el que facturaste" in html
    assert "karla@example.com" not in html


def test_branch_is_required_when_the_merchant_asks_for_it(client, merchant, branch, make_ticket):
    from tickets.models import Branch

    merchant.require_branch_on_lookup = True
    merchant.save()
    north = Branch.objects.create(merchant=merchant, code="NORTE", name="Norte", postal_code="64000")
    ticket = make_ticket(north, number="B1", total=Decimal("5.00"))
    no_branch = lookup(client, merchant, "B1", "5.00", local_day(ticket))
    assert no_branch.status_code == 400 and "Elige la sucursal" in no_branch.content.decode()
    wrong = lookup(client, merchant, "B1", "5.00", local_day(ticket), branch="CENTRO")
    assert NOT_FOUND_MESSAGE in wrong.content.decode()
    assert lookup(client, merchant, "B1", "5.00", local_day(ticket), branch="NORTE").status_code == 302


def test_bad_input_shows_errors_next_to_fields_and_a_summary(client, merchant):
    response = lookup(client, merchant, "", "abc", "31/02/2026")
    html = response.content.decode()
    assert response.status_code == 400
    assert 'class="summary"' in html and 'href="#id_number"' in html
    assert 'id="id_total-error"' in html and "Escribe el total con números" in html
    assert 'aria-invalid="true"' in html


def test_two_tickets_share_one_cart_and_can_be_removed(client, merchant, branch, make_ticket, fresh):
    second = make_ticket(branch, number="A101", total=Decimal("9.90"))
    lookup(client, merchant, "A100", "250.50", local_day(fresh))
    lookup(client, merchant, "A101", "9.90", local_day(second))
    html = client.get(f"/{merchant.slug}/carrito/").content.decode()
    assert "A100" in html and "A101" in html and "260.40" in html
    client.post(f"/{merchant.slug}/carrito/", {"ticket": second.public_code})
    html = client.get(f"/{merchant.slug}/carrito/").content.decode()
    assert "A100" in html and "A101" not in html


def test_receipt_qr_link_opens_the_ticket(client, merchant, fresh):
    response = client.get(f"/t/{fresh.public_code}")
    assert response.status_code == 302 and response.url == f"/{merchant.slug}/carrito/"


def test_receipt_qr_link_with_a_wrong_code_is_404(client, db):
    response = client.get("/t/no-such-code")
    assert response.status_code == 404 and "No encontramos tu ticket" in response.content.decode()


def test_lookups_are_rate_limited_per_ip(client, merchant, fresh, settings):
    settings.PORTAL_RATE_LIMITS = {"lookup_ip": (3, 600)}
    for _ in range(3):
        assert lookup(client, merchant, "X", "1", "2026-01-01").status_code == 200
    blocked = lookup(client, merchant, "A100", "250.50", local_day(fresh))
    assert blocked.status_code == 429 and "demasiados intentos" in blocked.content.decode()
    assert client.get(f"/t/{fresh.public_code}").status_code == 429


def test_one_address_cannot_lock_a_merchants_shoppers_out(client, merchant, fresh, still_clock):
    """The review's attack, with the default limits: 600 lookups from one address, then two shoppers."""
    answers = [lookup(client, merchant, "X", "1", "2026-01-01", ip="203.0.113.66").status_code
               for _ in range(600)]
    assert answers.count(200) == 30 and answers.count(429) == 570
    for shopper in ("198.51.100.1", "198.51.100.2"):
        found = client.post(f"/{merchant.slug}/", {"number": "A100", "total": "250.50", "sold_on": local_day(fresh)},
                            REMOTE_ADDR=shopper)
        assert found.status_code == 302 and found.url.endswith("/carrito/")


def test_past_the_merchant_limit_each_address_keeps_a_few_lookups(client, merchant, other_merchant, fresh,
                                                                  settings, still_clock):
    """A guess spread over many addresses is slowed to a few tries per address, never a closed merchant."""
    settings.PORTAL_RATE_LIMITS = {"lookup_merchant": (2, 60), "lookup_surge_ip": (1, 600)}
    for i in range(2):
        assert lookup(client, merchant, "X", "1", "2026-01-01", ip=f"10.0.0.{i}").status_code == 200
    for ip in ("10.0.0.9", "10.0.0.1"):  # the merchant is over its limit: one more try for each address
        assert lookup(client, merchant, "X", "1", "2026-01-01", ip=ip).status_code == 200
        assert lookup(client, merchant, "X", "1", "2026-01-01", ip=ip).status_code == 429
    shopper = client.post(f"/{merchant.slug}/", {"number": "A100", "total": "250.50", "sold_on": local_day(fresh)},
                          REMOTE_ADDR="10.0.0.50")
    assert shopper.status_code == 302
    other = client.post(f"/{other_merchant.slug}/", {"number": "X", "total": "1", "sold_on": "2026-01-01"},
                        REMOTE_ADDR="10.0.0.9")
    assert other.status_code == 200  # the other merchant is not under the same guess


def test_lookup_answers_with_redis_unreachable_and_limits_still_apply(client, merchant, fresh, redis_down,
                                                                      settings):
    settings.PORTAL_RATE_LIMITS = {"lookup_ip": (3, 600)}
    found = lookup(client, merchant, "A100", "250.50", local_day(fresh))
    assert found.status_code == 302 and found.url.endswith("/carrito/")
    assert client.get(f"/{merchant.slug}/carrito/").status_code == 200
    assert lookup(client, merchant, "X", "1", "2026-01-01").status_code == 200
    assert client.get(f"/t/{fresh.public_code}").status_code == 302  # the receipt's QR link counts as a lookup
    blocked = lookup(client, merchant, "A100", "250.50", local_day(fresh))
    assert blocked.status_code == 429 and "demasiados intentos" in blocked.content.decode()
    assert lookup(client, merchant, "X", "1", "2026-01-01", ip="10.9.9.9").status_code == 200


def test_a_shopper_on_merchant_a_cannot_find_merchant_b_tickets(client, merchant, other_branch, make_ticket):
    theirs = make_ticket(other_branch, number="Z-1", total=Decimal("77.00"))
    html = lookup(client, merchant, "Z-1", "77.00", local_day(theirs)).content.decode()
    assert NOT_FOUND_MESSAGE in html
    assert client.get(f"/{merchant.slug}/facturado/{theirs.public_code}/").status_code == 404
    client.post(f"/{merchant.slug}/carrito/", {"ticket": theirs.public_code})
    assert "Z-1" not in client.get(f"/{merchant.slug}/carrito/").content.decode()


def test_receipt_link_of_merchant_b_lands_on_merchant_b(client, merchant, other_branch, make_ticket):
    theirs = make_ticket(other_branch, number="Z-2", total=Decimal("1.00"))
    response = client.get(f"/t/{theirs.public_code}")
    assert response.url == f"/{other_branch.merchant.slug}/carrito/"
    assert "Z-2" not in client.get(f"/{merchant.slug}/carrito/").content.decode()
