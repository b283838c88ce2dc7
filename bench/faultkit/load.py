"""The mixed load: points of sale sending batches, shoppers self-invoicing through the real HTML pages, an ERP
invoicing through the API, and API reads. Every request is recorded as a Sample; every ticket and invoice the
product acknowledged is remembered, so that the end of the run can check it is there exactly once.

Clients behave as real ones do when the server fails: machines (POS, ERP) resend the same batch or the same
Idempotency-Key until they get an answer; shoppers reload a page a few times, then give up.
"""

from __future__ import annotations

import collections
import datetime as dt
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

import requests

from .counting import InvoiceRequest, Sample, TicketKey

RECEPTOR = {"rfc": "CACX7605101P8", "name": "XOCHILT CASAS CHAVEZ", "tax_regime": "612", "postal_code": "36257",
            "cfdi_use": "G03"}
TRANSIENT = {500, 502, 503, 504}


@dataclass
class Shop:
    slug: str
    api_key: str
    branches: list[str]
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("America/Mexico_City"))


@dataclass
class OpenTicket:
    shop: Shop
    branch: str
    number: str
    ticket_id: int
    total: Decimal
    sold_at: dt.datetime

    @property
    def key(self) -> TicketKey:
        return (self.shop.slug, self.branch, self.number)


class Recorder:
    """Thread-safe log of what happened, and the phase the run is in."""

    def __init__(self):
        self.lock = threading.Lock()
        self.phase = "setup"
        self.samples: list[Sample] = []
        self.tickets_acknowledged: set[TicketKey] = set()
        self.tickets_unacknowledged = 0
        self.tickets_rejected = 0
        self.background_batches: dict[str, str] = {}  # batch_id → the phase its 202 came in
        self.invoice_requests: list[InvoiceRequest] = []
        self.open_tickets: collections.deque[OpenTicket] = collections.deque()
        self.flows = collections.Counter()

    def sample(self, start: float, kind: str, status: int | None) -> None:
        with self.lock:
            self.samples.append(Sample(start, time.time(), self.phase, kind, status))

    def count(self, what: str) -> None:
        with self.lock:
            self.flows[what] += 1


class Actor(threading.Thread):
    def __init__(self, base_url: str, recorder: Recorder, stop: threading.Event, seed: int):
        super().__init__(daemon=True)
        self.base = base_url
        self.rec = recorder
        self.stop_event = stop
        self.random = random.Random(seed)
        self.session = requests.Session()

    def request(self, method: str, path: str, kind: str, session: requests.Session | None = None,
                **kwargs) -> requests.Response | None:
        start = time.time()
        try:
            response = (session or self.session).request(method, self.base + path, timeout=30,
                                                         allow_redirects=False, **kwargs)
        except requests.RequestException:
            self.rec.sample(start, kind, None)
            return None
        self.rec.sample(start, kind, response.status_code)
        return response

    def retrying(self, method: str, path: str, kind: str, *, give_up_after: float, pause: float = 1.0,
                 session: requests.Session | None = None, **kwargs) -> tuple[requests.Response | None, int]:
        """Resend while the answer is a 5xx or nothing at all; returns the last answer and the attempts."""
        deadline = time.monotonic() + give_up_after
        attempts = 0
        while True:
            attempts += 1
            response = self.request(method, path, kind, session=session, **kwargs)
            if response is not None and response.status_code not in TRANSIENT:
                return response, attempts
            if time.monotonic() > deadline:
                return response, attempts
            time.sleep(pause)

    def pause(self, seconds: float) -> None:
        self.stop_event.wait(seconds * (0.5 + self.random.random()))

    def run(self):
        while not self.stop_event.is_set():
            try:
                self.step()
            except Exception as exc:  # noqa: BLE001 - a client bug must not end the load silently
                self.rec.count(f"client_error {type(exc).__name__}")
                self.pause(1)


def ticket_payload(branch: str, number: str, sold_at: dt.datetime, amount: Decimal) -> dict:
    return {
        "branch": branch, "number": number, "sold_at": sold_at.isoformat(), "payment_form": "04",
        "total": f"{amount:.2f}",
        "lines": [{"product_code": "50202306", "unit_code": "H87", "description": "REFRESCO", "quantity": "1",
                   "unit_price": f"{amount:.2f}", "tax_object": "02",
                   "taxes": [{"tax": "002", "factor": "Tasa", "rate": "0.160000"}]}],
    }


class PointOfSale(Actor):
    """Batches of new tickets every ``interval`` seconds; every ``big_every``-th one is big enough to be stored
    by a background worker (API_BATCH_SYNC_MAX is set below its size)."""

    def __init__(self, *args, shops: list[Shop], run_id: str, batch_size: int, big_size: int, big_every: int,
                 interval: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.shops, self.run_id = shops, run_id
        self.batch_size, self.big_size, self.big_every, self.interval = batch_size, big_size, big_every, interval
        self.n = 0

    def step(self):
        shop = self.shops[self.n % len(self.shops)]
        big = self.n % self.big_every == self.big_every - 1
        size = self.big_size if big else self.batch_size
        batch_id = f"{self.run_id}-{self.n}"
        self.n += 1
        sold_at = dt.datetime.now(shop.tz).replace(microsecond=0) - dt.timedelta(minutes=1)
        tickets = []
        for i in range(size):
            amount = Decimal(self.random.randint(1000, 99999)) / 100
            tickets.append(ticket_payload(self.random.choice(shop.branches), f"{batch_id}-{i}", sold_at, amount))
        headers = {"Authorization": f"Bearer {shop.api_key}"}
        response, attempts = self.retrying("POST", "/api/v1/tickets/batch", "pos_batch", give_up_after=60,
                                           json={"batch_id": batch_id, "tickets": tickets}, headers=headers)
        keys = [(shop.slug, t["branch"], t["number"]) for t in tickets]
        status = response.status_code if response is not None else None
        if status in (200, 207):
            report = response.json()["report"]
            with self.rec.lock:
                for entry in report:
                    key = (shop.slug, entry.get("branch"), entry.get("number"))
                    if entry.get("status") in ("created", "duplicate"):
                        self.rec.tickets_acknowledged.add(key)
                        if entry["status"] == "created":
                            payload = next(t for t in tickets if t["number"] == entry["number"])
                            self.rec.open_tickets.append(OpenTicket(shop, entry["branch"], entry["number"],
                                                                    entry["ticket_id"], Decimal(payload["total"]),
                                                                    sold_at))
                    else:
                        self.rec.tickets_rejected += 1
        elif status == 202 or (status == 422 and attempts > 1):
            # 202: stored in the background. 422 on a resend: the product says it already has this batch.
            with self.rec.lock:
                self.rec.tickets_acknowledged.update(keys)
                self.rec.background_batches[batch_id] = self.rec.phase
        else:
            with self.rec.lock:
                self.rec.tickets_unacknowledged += len(keys)
            self.rec.count(f"pos_batch_unacknowledged {status}")
        self.pause(self.interval)


def take_ticket(rec: Recorder) -> OpenTicket | None:
    with rec.lock:
        return rec.open_tickets.popleft() if rec.open_tickets else None


def give_back(rec: Recorder, ticket: OpenTicket) -> None:
    with rec.lock:
        rec.open_tickets.append(ticket)


_INVOICE_URL = re.compile(r"/factura/([^/]+)/$")


class Shopper(Actor):
    """One shopper after another, each with a fresh browser session: landing page, lookup by number, total and
    date, cart, fiscal data, confirmation, the invoice's progress page. Every other visit also mistypes a
    total first (the lookup answers "not found" and the shopper tries again)."""

    def __init__(self, *args, think: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.think = think

    def page(self, method: str, path: str, kind: str, session, tries: int = 4, **kwargs):
        """A person reloads a failing page a few times, then leaves."""
        for _ in range(tries):
            response = self.request(method, path, kind, session=session, **kwargs)
            if response is not None and response.status_code not in TRANSIENT:
                return response
            self.pause(1.0)
        return None

    def step(self):
        ticket = take_ticket(self.rec)
        if ticket is None:
            self.pause(0.5)
            return
        shop = ticket.shop
        browser = requests.Session()
        landing = f"/{shop.slug}/"
        if self.page("GET", landing, "portal_page", browser) is None:
            return self.leave(ticket, "landing")
        headers = {"X-CSRFToken": browser.cookies.get("csrftoken", "")}
        sold_on = ticket.sold_at.astimezone(shop.tz).date().isoformat()
        if self.random.random() < 0.5:
            wrong = {"number": ticket.number, "total": f"{ticket.total + 1:.2f}", "sold_on": sold_on}
            if self.page("POST", landing, "portal_lookup", browser, data=wrong, headers=headers) is None:
                return self.leave(ticket, "lookup")
            self.pause(self.think)
        form = {"number": ticket.number, "total": f"{ticket.total:.2f}", "sold_on": sold_on}
        found = self.page("POST", landing, "portal_lookup", browser, data=form, headers=headers)
        if found is None or found.status_code != 302 or "/carrito/" not in found.headers.get("Location", ""):
            self.rec.count(f"shopper_lookup_refused {found.status_code if found is not None else None}")
            return self.leave(ticket, "lookup")
        for path in (f"/{shop.slug}/carrito/", f"/{shop.slug}/datos/"):
            self.pause(self.think)
            if self.page("GET", path, "portal_page", browser) is None:
                return self.leave(ticket, "pages")
        data = {**RECEPTOR, "emails": f"cliente.{ticket.number.lower()}@example.com"}
        sent = self.page("POST", f"/{shop.slug}/datos/", "portal_form", browser, data=data, headers=headers)
        if sent is None or sent.status_code != 302:
            self.rec.count(f"shopper_data_refused {sent.status_code if sent is not None else None}")
            return self.leave(ticket, "data")
        self.pause(self.think)
        if self.page("GET", f"/{shop.slug}/confirmar/", "portal_page", browser) is None:
            return self.leave(ticket, "confirm page")
        self.pause(self.think)
        # "Facturar": pressed again after an error page, which resends the same pending request (its key).
        done = self.page("POST", f"/{shop.slug}/confirmar/", "portal_invoice", browser, headers=headers, tries=6)
        match = _INVOICE_URL.search(done.headers.get("Location", "")) if done is not None else None
        with self.rec.lock:
            self.rec.invoice_requests.append(InvoiceRequest(
                "portal", (ticket.key,), acknowledged=bool(match and done.status_code == 302),
                ref=match.group(1) if match else ""))
        if not match:
            self.rec.count(f"shopper_invoice_refused {done.status_code if done is not None else None}")
            return
        self.rec.count("shopper_invoiced")
        location = done.headers["Location"]
        self.page("GET", location, "portal_page", browser, tries=2)
        for _ in range(2):
            self.pause(self.think)
            self.page("GET", location + "estado", "portal_status", browser, tries=2)

    def leave(self, ticket: OpenTicket, where: str) -> None:
        """The shopper gave up before pressing "Facturar": the ticket is still open for someone else."""
        self.rec.count(f"shopper_left_at_{where}")
        give_back(self.rec, ticket)


class Erp(Actor):
    """Invoices tickets through the API: reads the ticket, then POST /invoices with an Idempotency-Key,
    resent with the same key until the product answers."""

    def __init__(self, *args, interval: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.interval = interval

    def step(self):
        ticket = take_ticket(self.rec)
        if ticket is None:
            self.pause(0.5)
            return
        headers = {"Authorization": f"Bearer {ticket.shop.api_key}"}
        read, _ = self.retrying("GET", f"/api/v1/tickets/{ticket.ticket_id}", "api_read", give_up_after=30,
                                headers=headers)
        if read is None or read.status_code != 200:
            give_back(self.rec, ticket)
            self.pause(self.interval)
            return
        key = str(uuid.uuid4())
        body = {"ticket_ids": [ticket.ticket_id],
                "receptor": {**RECEPTOR, "emails": [f"erp.{ticket.number.lower()}@example.com"]}}
        response, _ = self.retrying("POST", "/api/v1/invoices", "api_invoice", give_up_after=60,
                                    json=body, headers={**headers, "Idempotency-Key": key})
        ok = response is not None and response.status_code == 202
        with self.rec.lock:
            self.rec.invoice_requests.append(InvoiceRequest("api", (ticket.key,), acknowledged=ok,
                                                            ref=str(response.json()["id"]) if ok else "", key=key))
        if not ok:
            self.rec.count(f"api_invoice_refused {response.status_code if response is not None else None}")
        self.pause(self.interval)


class Reader(Actor):
    """An ERP polling: ticket and invoice lists, one recent invoice."""

    def __init__(self, *args, shops: list[Shop], interval: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.shops, self.interval = shops, interval

    def step(self):
        shop = self.random.choice(self.shops)
        headers = {"Authorization": f"Bearer {shop.api_key}"}
        which = self.random.random()
        if which < 0.4:
            self.request("GET", "/api/v1/tickets?limit=20", "api_read", headers=headers)
        elif which < 0.8:
            self.request("GET", "/api/v1/invoices?limit=20", "api_read", headers=headers)
        else:
            with self.rec.lock:
                recent = [r.ref for r in self.rec.invoice_requests[-40:]
                          if r.source == "api" and r.ref and r.tickets[0][0] == shop.slug]
            if recent:
                self.request("GET", f"/api/v1/invoices/{self.random.choice(recent)}", "api_read", headers=headers)
        self.pause(self.interval)
