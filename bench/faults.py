"""Reliability suite: mixed load against a production-like install while faults are injected one after another.
Prints ONE JSON object. Not a test and not part of `make bench`; run it on its own:

    .venv/bin/python bench/faults.py            # ≈ 5-6 minutes
    .venv/bin/python bench/faults.py --quick    # ≈ 2-3 minutes: shorter phases, a 30 s invoice lease
    make faults                                 # the same as the first line

Self-contained: it starts its OWN PostgreSQL (initdb into a temp dir, run as the "postgres" user when started as
root), its own redis-server, gunicorn and the django-q2 workers (`manage.py qcluster --queue X` for each of the
three queues, Redis broker), all on free ports, plus a fake Finkok it controls (bench/faultkit/pac.py). The
machine's PostgreSQL and Redis are never touched. Everything is stopped and the temp dir removed at the end, also
on Ctrl-C (`--keep` keeps the logs).

Two merchants: one stamps with the Finkok adapter against the fake Finkok, one with the built-in sandbox PAC.
The load (bench/faultkit/load.py): a POS sending batches (small ones stored in the request, every 8th one big
enough to go to a background worker), shoppers self-invoicing through the real HTML pages (landing, lookup,
cart, fiscal data, confirmation, progress page), an ERP invoicing through the API with an Idempotency-Key, and
API reads. Clients retry as real ones do (machines resend the same batch or key; people reload a few times).

Phases: a warm-up, the baseline, then each fault followed by an "after" phase. Before each fault the run waits
(load running, up to `--between-seconds`) until the stamping queue holds nothing older than 20 s, so that one
fault's effects do not pile onto the next; the PAC faults come first because they need invoices flowing.
- pac_timeouts: every Finkok call hangs past PAC_TIMEOUT_SECONDS (3 s here); every other stamp call is stamped
  at the PAC first, so resends must come back as 307 with the same UUID;
- pac_5xx: every Finkok call answers 500 (SOAP fault) or 503 (HTML);
  (a PAC fault stays on past its phase, up to `--pac-hold-seconds`, until the product met it `--pac-min-calls`
  times)
- worker_kill: SIGKILL of the busiest worker of the stamping cluster (django-q2 forks a new one), then, half-way,
  SIGKILL of the whole cluster, restarted at once as a supervisor would;
- pg_restart: PostgreSQL stopped (`pg_ctl stop -m fast`, `--pg-stop-mode immediate` for a crash), down for
  `--db-down-seconds`, started again;
- redis_away: redis-server SIGKILLed (no persistence: the queued tasks are gone), back after
  `--redis-down-seconds`.
Then the load stops and the run drains (up to `--drain-seconds`) until no invoice is in flight, every
background batch is finished and every stamped invoice's email is out.

What it counts (bench/faultkit/counting.py):
- requests, http_5xx_outside_db_down (HTTP 5xx from requests that did not overlap the seconds PostgreSQL was
  down), no_answer_outside_db_down (refused/reset/timed out), and inside that window the answers by status;
- tickets_lost / tickets_duplicated: tickets the POS was told were stored vs rows by (merchant, branch, number);
- invoices_lost: requests acknowledged (portal redirect to the invoice page, API 202) whose invoice is missing
  or not stamped at the end; invoices_duplicated: more than one live invoice per ticket or per Idempotency-Key;
- folio_gaps per (merchant, serie); emails_unsent: stamped invoices with an address and no message in the
  file backend's directory; pac_stamps_without_invoice: UUIDs the fake Finkok gave that no invoice holds;
- p99 latency of every phase, and per fault: its window, 5xx during and after it, how long until requests
  stopped failing (http_recovered_s) and until every invoice created before the fault ended had left the
  queue (stamping_recovered_s).
Target: 0 lost, 0 duplicated, 0 folio gaps, 0 unsent emails, 0 stamps without invoice, 0 5xx outside the DB-down window, and only 503s
(no 500s) inside it. `targets_met` says whether this run hit it.

Where the workers are started: bench/faultkit/services.py `start_workers` (one place): one
`manage.py qcluster --queue <name>` per queue (stamp, deliver, bulk), as a process manager runs them;
`--clusters all` runs the one plain `qcluster` instead; `--stamp-cluster` picks the one the worker kill targets.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from faultkit import counting, load  # noqa: E402
from faultkit.pac import PASSWORD, USERNAME, control  # noqa: E402
from faultkit.services import (  # noqa: E402
    Postgres,
    Redis,
    WebServer,
    free_port,
    kill_group,
    port_open,
    start_workers,
    wait_until,
)

# The PAC faults first: they need invoices flowing to the PAC, and a worker kill that catches invoices in flight
# leaves them leased until INVOICE_STUCK_AFTER_SECONDS.
FAULTS = ["pac_timeouts", "pac_5xx", "worker_kill", "pg_restart", "redis_away"]
STALE_AFTER_SECONDS = 20
PAC_TIMEOUT_SECONDS = 3

SETTINGS = '''
import os

from portal.settings import *  # noqa: F403

# The Finkok adapter talks to the suite's fake Finkok (bench/faultkit/pac.py).
import invoicing.pac.finkok as _finkok

_finkok.URLS["test"] = os.environ["FAULTS_FINKOK_URL"]

EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = os.environ["FAULTS_MAIL_DIR"]
# Every client of the suite comes from 127.0.0.1: the per-IP limits would measure themselves.
PORTAL_RATE_LIMITS = {name: (10**9, 60) for name in ("lookup_ip", "lookup_merchant", "rfc_ip", "resend_ip",
                                                       "upload_ip")}
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
'''


STARTED = time.monotonic()


def log(message: str) -> None:
    sys.stderr.write(f"[faults +{time.monotonic() - STARTED:5.0f} s] {message}\n")
    sys.stderr.flush()


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short phases (10 s faults, 8 s after, 30 s lease)")
    p.add_argument("--warmup-seconds", type=float, help="load before the baseline, left out of the p99s")
    p.add_argument("--baseline-seconds", type=float)
    p.add_argument("--fault-seconds", type=float, help="length of each fault phase (default 30)")
    p.add_argument("--after-seconds", type=float, help="length of the phase after each fault (default 20)")
    p.add_argument("--db-down-seconds", type=float, help="PostgreSQL down time (default 10)")
    p.add_argument("--redis-down-seconds", type=float, help="Redis down time (default 20)")
    p.add_argument("--drain-seconds", type=float, default=300, help="longest wait for the queue to settle")
    p.add_argument("--between-seconds", type=float,
                   help="before each fault, wait up to this long (load running) for the stamping queue to hold "
                        f"nothing older than {STALE_AFTER_SECONDS} s, so that faults do not pile up (default 60)")
    p.add_argument("--settle-seconds", type=float,
                   help="the drain also ends when nothing changed for this long (default 90)")
    p.add_argument("--pg-stop-mode", choices=["fast", "immediate"], default="fast")
    p.add_argument("--pac-min-calls", type=int, default=10,
                   help="a PAC fault lasts until the product has met it this many times ...")
    p.add_argument("--pac-hold-seconds", type=float, default=60, help="... or this much longer than its phase")
    p.add_argument("--only", default="", help=f"comma-separated subset of {','.join(FAULTS)}")
    p.add_argument("--clusters", default=os.environ.get("FAULTS_Q_CLUSTERS", ""),
                   help="queues to run, one `qcluster --queue <name>` each (default: stamp,deliver,bulk); "
                        "`all`: one plain `qcluster` for the three")
    p.add_argument("--stamp-cluster", default="stamp",
                   help="cluster the worker kill targets (default: stamp, or the first)")
    p.add_argument("--q-workers", type=int, default=2)
    p.add_argument("--web-workers", type=int, default=3)
    p.add_argument("--shoppers", type=int, default=2)
    p.add_argument("--lease-seconds", type=int,
                   help="INVOICE_STUCK_AFTER_SECONDS for the run (default: the product's default)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, mail) and print its path")
    args = p.parse_args(argv)
    quick = args.quick
    defaults = {"warmup_seconds": 4 if quick else 8, "baseline_seconds": 10 if quick else 30,
                "settle_seconds": 45 if quick else 90, "between_seconds": 30 if quick else 60, "fault_seconds": 10 if quick else 30,
                "after_seconds": 8 if quick else 20, "db_down_seconds": 5 if quick else 10,
                "redis_down_seconds": 6 if quick else 20, "lease_seconds": 30 if quick else None}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.faults = [f for f in (args.only.split(",") if args.only else FAULTS) if f]
    unknown = set(args.faults) - set(FAULTS)
    if unknown:
        p.error(f"unknown faults: {', '.join(sorted(unknown))}")
    return args


class Suite:
    def __init__(self, args):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="faults-"))
        self.logs = self.tmp / "logs"
        self.logs.mkdir()
        self.mail = self.tmp / "mail"
        self.mail.mkdir()
        self.pg = self.redis = self.web = self.pac_proc = None
        self.clusters = []
        self.rec = load.Recorder()
        self.stop_load = threading.Event()
        self.stop_monitor = threading.Event()
        self.queue_samples: list[tuple[float, float | None, int]] = []
        self.health = Counter()
        self.db_down: list[counting.Window] = []
        self.windows: dict[str, dict] = {}
        self.phase_bounds: list[tuple[str, float, float]] = []
        self.started = time.time()

    # --- set-up ---------------------------------------------------------------------------------------

    def start_servers(self) -> None:
        log(f"temp dir {self.tmp}")
        self.pg = Postgres(self.tmp, self.logs)
        self.pg.init()
        self.pg.start()
        self.pg.create_database()
        self.redis = Redis(self.tmp, self.logs)
        self.redis.start()
        pac_port = free_port()
        self.pac_url = f"http://127.0.0.1:{pac_port}"
        pac_log = open(self.logs / "pac.log", "ab")  # noqa: SIM115
        self.pac_proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "faultkit" / "pac.py"), "--port", str(pac_port),
             "--hang-seconds", str(PAC_TIMEOUT_SECONDS + 3)],
            stdout=pac_log, stderr=subprocess.STDOUT, start_new_session=True)
        pac_log.close()
        wait_until(lambda: port_open(pac_port), 20, "the fake Finkok")
        (self.tmp / "faults_settings.py").write_text(SETTINGS)
        web_port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("EMAIL_HOST", "DATABASE_URL", "REDIS_URL")},
            "DJANGO_SETTINGS_MODULE": "faults_settings",
            "PYTHONPATH": os.pathsep.join([str(self.tmp), str(ROOT)]),
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "FIELD_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_COOKIES": "0",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
            "VAR_DIR": str(self.tmp / "var"),
            "MEDIA_ROOT": str(self.tmp / "media"),
            "DATABASE_URL": self.pg.url,
            "REDIS_URL": self.redis.url,
            "Q_WORKERS": str(self.args.q_workers),
            "PAC_TIMEOUT_SECONDS": str(PAC_TIMEOUT_SECONDS),
            "API_BATCH_SYNC_MAX": "100",
            "LOG_LEVEL": "WARNING",
            "FAULTS_FINKOK_URL": self.pac_url,
            "FAULTS_MAIL_DIR": str(self.mail),
        }
        if self.args.lease_seconds:
            self.env["INVOICE_STUCK_AFTER_SECONDS"] = str(self.args.lease_seconds)
        os.environ.update(self.env)
        sys.path.insert(0, str(self.tmp))
        import django

        django.setup()
        self.shops = self.setup_data()
        self.web = WebServer(self.env, self.logs, self.args.web_workers, web_port)
        self.web.start()
        names = [n.strip() for n in self.args.clusters.split(",") if n.strip()]
        self.clusters = start_workers(self.env, self.logs, names)
        self.stamp_cluster = next((c for c in self.clusters if c.name == self.args.stamp_cluster), self.clusters[0])
        import requests

        wait_until(lambda: _healthy(requests, self.web.url), 60, "/healthz to answer 200")

    def setup_data(self) -> list[load.Shop]:
        from django.core.management import call_command

        log("migrating the suite's database")
        call_command("migrate", verbosity=0)
        call_command("load_sat_catalogs", stdout=io.StringIO())
        from invoicing.cfdi.testcsd import generate_test_csd
        from invoicing.services.certificates import certificate_install
        from tickets.models import Branch, Merchant
        from tickets.services import api_key_create

        shops = []
        for slug, pac, branches in (("faults-finkok", "finkok", [("A1", "A"), ("A2", "B")]),
                                    ("faults-sandbox", "sandbox", [("S1", "S")])):
            merchant = Merchant.objects.create(
                slug=slug, legal_name="ESCUELA KEMPER URGATE", rfc="EKU9003173C9", tax_regime="601", pac=pac,
                pac_environment="test", pac_username=USERNAME if pac == "finkok" else "",
                pac_password=PASSWORD if pac == "finkok" else None, self_invoice_window="days",
                self_invoice_days=30)
            for code, serie in branches:
                Branch.objects.create(merchant=merchant, code=code, name=code, postal_code="06600",
                                      invoice_serie=serie)
            cer, key, password = generate_test_csd(merchant.rfc, merchant.legal_name)
            certificate_install(merchant=merchant, cer=cer, key=key, password=password)
            _, plain = api_key_create(merchant=merchant, name="faults", scopes=["tickets", "invoices"])
            shops.append(load.Shop(slug=slug, api_key=plain, branches=[c for c, _ in branches]))
        from django.db import connections

        connections.close_all()
        return shops

    # --- load and monitor -----------------------------------------------------------------------------

    def start_load(self) -> None:
        base, rec, stop = self.web.url, self.rec, self.stop_load
        run_id = secrets.token_hex(3).upper()  # the portal upper-cases what shoppers type
        self.actors = [
            load.PointOfSale(base, rec, stop, 1, shops=self.shops, run_id=run_id, batch_size=10, big_size=150,
                             big_every=8, interval=1.0),
            load.Erp(base, rec, stop, 2, interval=0.7),
            load.Reader(base, rec, stop, 3, shops=self.shops, interval=0.3),
            *[load.Shopper(base, rec, stop, 10 + i, think=0.2) for i in range(self.args.shoppers)],
        ]
        for actor in self.actors:
            actor.start()
        self.monitor = threading.Thread(target=self.watch, daemon=True)
        self.monitor.start()

    def watch(self) -> None:
        """Once a second: the oldest invoice still in the queue (from PostgreSQL) and /healthz's answer."""
        import requests
        from django.db import connection
        from django.db.models import Count, Min

        from invoicing.models import Invoice

        while not self.stop_monitor.wait(1.0):
            now = time.time()
            try:
                row = Invoice.objects.filter(merchant__slug__startswith="faults-",
                                             status__in=["pending", "sealed"]).aggregate(
                    oldest=Min("created_at"), n=Count("id"))
                oldest = row["oldest"].timestamp() if row["oldest"] else None
                self.queue_samples.append((now, oldest, row["n"]))
            except Exception:  # noqa: BLE001 - PostgreSQL may be the fault right now
                connection.close()
            try:
                status = requests.get(self.web.url + "/healthz", timeout=5).status_code
            except requests.RequestException:
                status = None
            self.health[f"{self.rec.phase} {status}"] += 1

    # --- phases ---------------------------------------------------------------------------------------

    def phase(self, name: str, seconds: float, steps=(), hold=None, hold_max: float = 0) -> tuple[float, float]:
        """Run the load in phase ``name`` for ``seconds``; ``steps`` are (offset, callable) done on the way.
        ``hold()`` True at the end keeps the phase going, up to ``hold_max`` seconds more."""
        log(f"phase {name} ({seconds:.0f} s)")
        self.rec.phase = name
        start = time.time()
        for offset, action in steps:
            delay = start + offset - time.time()
            if delay > 0:
                time.sleep(delay)
            action()
        delay = start + seconds - time.time()
        if delay > 0:
            time.sleep(delay)
        while hold is not None and time.time() < start + seconds + hold_max and hold():
            time.sleep(1)
        end = time.time()
        self.phase_bounds.append((name, start, end))
        return start, end

    def run_faults(self) -> None:
        a = self.args
        self.phase("warmup", a.warmup_seconds)
        self.phase("baseline", a.baseline_seconds)
        for fault in a.faults:
            window = self.windows.setdefault(fault, {})
            window["waited_before_s"] = self.settle_before(fault)
            getattr(self, f"fault_{fault}")(window)
            self.phase(f"after_{fault}", a.after_seconds)

    def stamping_stale(self) -> bool:
        if not self.queue_samples:
            return False
        at, oldest, _ = self.queue_samples[-1]
        return oldest is not None and at - oldest > STALE_AFTER_SECONDS

    def settle_before(self, fault: str) -> float:
        """Start each fault from a queue that moves, as far as the product lets it within --between-seconds."""
        if not self.stamping_stale():
            return 0.0
        start, end = self.phase(f"settle_before_{fault}", 0, hold=self.stamping_stale,
                                hold_max=self.args.between_seconds)
        return round(end - start, 1)

    def fault_worker_kill(self, w: dict) -> None:
        cluster = self.stamp_cluster

        def kill_one():
            w["start"] = time.time()
            w["worker_pids_before"] = cluster.worker_pids()
            w["in_flight_at_kill"] = self.queue_samples[-1][2] if self.queue_samples else None
            w["killed_worker"] = cluster.kill_busiest_worker()
            log(f"SIGKILL worker {w['killed_worker']}")

        def check_respawn():
            w["worker_pids_after"] = cluster.worker_pids()

        def kill_cluster():
            log(f"SIGKILL cluster {cluster.name} (pid {cluster.proc.pid}) and start it again")
            w["cluster_killed_at"] = time.time()
            cluster.kill9()
            cluster.start()
            w["end"] = time.time()

        half = self.args.fault_seconds / 2
        self.phase("worker_kill", self.args.fault_seconds,
                   [(1, kill_one), (min(5, half - 0.5), check_respawn), (half, kill_cluster)])

    def fault_pg_restart(self, w: dict) -> None:
        def down():
            log(f"PostgreSQL stop -m {self.args.pg_stop_mode}")
            w["start"] = time.time()
            self.pg.stop(self.args.pg_stop_mode)
            w["stopped"] = time.time()

        def up():
            self.pg.start()
            w["end"] = time.time()
            log(f"PostgreSQL back after {w['end'] - w['start']:.1f} s")
            self.db_down.append(counting.Window(w["start"], w["end"]))

        self.phase("pg_restart", self.args.fault_seconds, [(1, down), (1 + self.args.db_down_seconds, up)])

    def _pac_fault(self, w: dict, fault: str, phase: str) -> None:
        """The fault stays on for the phase, and longer (up to --pac-hold-seconds) until the product has met it
        on at least --pac-min-calls calls: a PAC outage while nothing is being stamped tests nothing."""
        before = Counter(control(self.pac_url)["counts"])

        def faulted() -> int:
            now = Counter(control(self.pac_url)["counts"]) - before
            return now["hung"] + now["stamped_then_hung"] + now["answered_5xx"]

        def on():
            w["start"] = time.time()
            control(self.pac_url, fault)

        start, end = self.phase(phase, self.args.fault_seconds, [(0, on)],
                                hold=lambda: faulted() < self.args.pac_min_calls, hold_max=self.args.pac_hold_seconds)
        control(self.pac_url, "none")
        w["end"] = time.time()
        w["held_s"] = round(max(0.0, end - start - self.args.fault_seconds), 1)
        w["pac"] = dict(Counter(control(self.pac_url)["counts"]) - before)

    def fault_pac_timeouts(self, w: dict) -> None:
        self._pac_fault(w, "timeout", "pac_timeouts")

    def fault_pac_5xx(self, w: dict) -> None:
        self._pac_fault(w, "5xx", "pac_5xx")

    def fault_redis_away(self, w: dict) -> None:
        def away():
            log("SIGKILL redis-server")
            w["start"] = time.time()
            self.redis.kill()

        def back():
            self.redis.start()
            w["end"] = time.time()
            log("redis-server back")

        self.phase("redis_away", self.args.fault_seconds, [(1, away), (1 + self.args.redis_down_seconds, back)])

    # --- drain and count ------------------------------------------------------------------------------

    def drain(self) -> float:
        log("load stopped; draining")
        self.rec.phase = "drain"
        self.stop_load.set()
        for actor in self.actors:
            actor.join(timeout=90)
        started = time.time()
        deadline = started + self.args.drain_seconds
        last, since = None, started
        while time.time() < deadline:
            state = self.drain_state()
            if state == (0, 0, 0):
                break
            if state != last:
                last, since = state, time.time()
            elif state is not None and state[0] == 0 and time.time() - since > self.args.settle_seconds:
                log(f"nothing moved for {self.args.settle_seconds:.0f} s: {state[1]} batches unfinished, "
                    f"{state[2]} emails unsent")
                break
            time.sleep(3)
        self.stop_monitor.set()
        self.monitor.join(timeout=10)
        return time.time() - started

    def drain_state(self) -> tuple[int, int, int] | None:
        """(invoices in flight, batches unfinished, emails unsent), None while the database cannot say."""
        from django.db import connection

        from tickets.models import Batch

        try:
            invoices = self.stored_invoices()
            unfinished = Batch.objects.filter(merchant__slug__startswith="faults-",
                                              finished_at__isnull=True).count()
        except Exception:  # noqa: BLE001
            connection.close()
            return None
        in_flight = sum(1 for i in invoices if i.status in ("pending", "sealed"))
        emails = counting.email_counts(invoices, counting.sent_email_uuids(self.mail))
        return in_flight, unfinished, emails["emails_unsent"]

    def stored_invoices(self) -> list[counting.StoredInvoice]:
        from invoicing.models import Invoice, InvoiceTicket

        links: dict[int, list] = {}
        for invoice_id, slug, branch, number in InvoiceTicket.objects.filter(
                invoice__merchant__slug__startswith="faults-").values_list(
                "invoice_id", "ticket__merchant__slug", "ticket__branch__code", "ticket__number"):
            links.setdefault(invoice_id, []).append((slug, branch, number))
        return [
            counting.StoredInvoice(id=i["id"], public_code=i["public_code"], status=i["status"],
                                   merchant=i["merchant__slug"], serie=i["serie"], folio=i["folio"],
                                   tickets=tuple(links.get(i["id"], ())),
                                   idempotency_key=i["idempotency_key"] or "", uuid=str(i["uuid"] or ""),
                                   emails=tuple(i["receptor_emails"] or ()), kind=i["kind"])
            for i in Invoice.objects.filter(merchant__slug__startswith="faults-").values(
                "id", "public_code", "status", "merchant__slug", "serie", "folio", "idempotency_key", "uuid",
                "receptor_emails", "kind")
        ]

    def report(self, drain_seconds: float) -> dict:
        from django.db import connection

        from invoicing.models import Invoice
        from tickets.models import Batch, Ticket

        connection.close()
        stored_tickets = list(Ticket.objects.filter(merchant__slug__startswith="faults-").values_list(
            "merchant__slug", "branch__code", "number"))
        invoices = self.stored_invoices()
        tickets = counting.ticket_counts(self.rec.tickets_acknowledged, stored_tickets)
        inv = counting.invoice_counts(self.rec.invoice_requests, invoices)
        gaps, gap_detail = counting.folio_gaps(invoices)
        sent = counting.sent_email_uuids(self.mail)
        emails = counting.email_counts(invoices, sent)
        samples = [s for s in self.rec.samples if s.phase not in ("setup",)]
        errors = counting.http_errors(samples, self.db_down)
        latency = counting.latency_by_phase(samples)
        batches = Counter(Batch.objects.filter(merchant__slug__startswith="faults-").values_list("status", flat=True))
        stamp_latency, stamped_at = self.stamp_latency()
        # Which phase each loss comes from: a batch by when its 202 came, an email by when its invoice stamped.
        unfinished = Batch.objects.filter(merchant__slug__startswith="faults-", finished_at__isnull=True)
        batches_lost_by_phase = Counter(self.rec.background_batches.get(b, "?")
                                        for b in unfinished.values_list("batch_id", flat=True))
        emails_unsent_by_phase = Counter(
            counting.phase_of(stamped_at.get(i.id, 0), self.phase_bounds) or "drain"
            for i in counting.unsent_emails(invoices, sent))
        pac = control(self.pac_url, uuids=True)
        orphans = counting.pac_stamps_without_invoice(pac.pop("uuids"), invoices, "faults-finkok")
        pdfs_missing = Invoice.objects.filter(merchant__slug__startswith="faults-", status="stamped", pdf="").count()

        faults = {}
        order = [name for name, _, _ in self.phase_bounds]
        bounds = {name: (start, end) for name, start, end in self.phase_bounds}
        for fault in self.args.faults:
            w = self.windows.get(fault, {})
            start, end = bounds.get(fault, (None, None))
            fault_end = w.get("end", end)
            after = bounds.get(f"after_{fault}")
            # Until the next fault starts (a settle phase in between still counts as "after" this one).
            later = order[order.index(fault) + 1:] if fault in order else []
            horizon = next((bounds[name][0] for name in later if name in self.args.faults), time.time())
            detail = {
                "window_s": [round(w.get("start", start) - self.started, 1), round(fault_end - self.started, 1)],
                "p99_ms_during": latency.get(fault, {}).get("p99_ms"),
                "p99_ms_after": latency.get(f"after_{fault}", {}).get("p99_ms"),
                "stamp_p99_s_during": stamp_latency.get(fault, {}).get("p99_s"),
                "stamp_p99_s_after": stamp_latency.get(f"after_{fault}", {}).get("p99_s"),
                "errors_during": errors.by_phase.get(fault, {}),
                "errors_after": errors.by_phase.get(f"after_{fault}", {}),
                "http_recovered_s": _http_recovered(samples, fault_end, horizon),
                "stamping_recovered_s": counting.queue_recovered_after(
                    [(t, oldest) for t, oldest, _ in self.queue_samples], fault_end),
                "waited_before_s": w.get("waited_before_s"),
                "queue_peak": max((n for t, _, n in self.queue_samples if start and start <= t <= horizon),
                                  default=0),
            }
            if after is None:
                detail.pop("p99_ms_after")
                detail.pop("stamp_p99_s_after")
            if fault == "pg_restart":
                detail["db_down_s"] = round(w["end"] - w["start"], 1) if "end" in w else None
                detail["answers_while_db_down"] = errors.during_db_down
            if fault == "worker_kill":
                detail["killed_worker"] = w.get("killed_worker")
                detail["in_flight_at_kill"] = w.get("in_flight_at_kill")
                detail["worker_respawned"] = bool(w.get("worker_pids_after")) and \
                    w.get("killed_worker") not in w.get("worker_pids_after", [])
            if fault.startswith("pac_"):
                detail["fake_pac"] = w.get("pac")  # what the fake did while the fault was on
                detail["held_s"] = w.get("held_s")
            faults[fault] = detail

        result = {
            "requests": len(samples),
            "http_5xx_outside_db_down": errors.http_5xx_outside_db_down,
            "no_answer_outside_db_down": errors.no_answer_outside_db_down,
            "tickets_lost": tickets["tickets_lost"],
            "tickets_duplicated": tickets["tickets_duplicated"],
            "invoices_lost": inv["invoices_lost"],
            "invoices_duplicated": inv["invoices_duplicated"],
            "folio_gaps": gaps,
            "emails_unsent": emails["emails_unsent"],
            "pac_stamps_without_invoice": orphans,
            "p99_ms": {name: latency.get(name, {}).get("p99_ms") for name in order if _reported(name)},
            # From "Facturar" (or the API's 202) to stamped, by the phase the invoice was requested in.
            "stamp_p99_s": {name: stamp_latency.get(name, {}).get("p99_s") for name in order if _reported(name)},
            "faults": faults,
            "details": {
                **{k: v for k, v in tickets.items() if k not in ("tickets_lost", "tickets_duplicated")},
                "tickets_unacknowledged": self.rec.tickets_unacknowledged,
                "tickets_rejected": self.rec.tickets_rejected,
                "batches_by_status": dict(batches),
                "batches_unfinished_by_phase_acknowledged": dict(batches_lost_by_phase),
                **{k: v for k, v in inv.items() if k not in ("invoices_lost", "invoices_duplicated")},
                "folios": gap_detail,
                **{k: v for k, v in emails.items() if k != "emails_unsent"},
                "emails_unsent_by_phase_stamped": dict(emails_unsent_by_phase),
                "pdfs_missing": pdfs_missing,
                "fake_pac": pac,
                "errors_by_phase": errors.by_phase,
                "answers_while_db_down": errors.during_db_down,
                "latency_by_phase": latency,
                "stamp_latency_by_phase": stamp_latency,
                "healthz_by_phase": dict(self.health),
                "client_flows": dict(self.rec.flows),
                "drain_s": round(drain_seconds, 1),
            },
            "config": {
                "quick": self.args.quick, "faults": self.args.faults, "baseline_s": self.args.baseline_seconds,
                "fault_s": self.args.fault_seconds, "after_s": self.args.after_seconds,
                "db_down_s": self.args.db_down_seconds, "redis_down_s": self.args.redis_down_seconds,
                "pg_stop_mode": self.args.pg_stop_mode, "pac_timeout_s": PAC_TIMEOUT_SECONDS,
                "q_workers": self.args.q_workers, "web_workers": self.args.web_workers,
                "clusters": [c.name for c in self.clusters], "lease_s": self.args.lease_seconds,
            },
        }
        db_down_not_503 = sum(n for k, n in errors.during_db_down.items() if k != "503")
        result["targets_met"] = all(result[k] == 0 for k in (
            "http_5xx_outside_db_down", "tickets_lost", "tickets_duplicated", "invoices_lost",
            "invoices_duplicated", "folio_gaps", "emails_unsent", "pac_stamps_without_invoice")) \
            and db_down_not_503 == 0
        result["seconds"] = round(time.time() - self.started, 1)
        return result

    def stamp_latency(self) -> tuple[dict, dict[int, float]]:
        """Stamp latency by phase, and when each invoice was stamped (its first "stamped" event)."""
        from django.db.models import Min

        from infra.models import Event
        from invoicing.models import Invoice

        created = {pk: at.timestamp() for pk, at in Invoice.objects.filter(
            merchant__slug__startswith="faults-").values_list("id", "created_at")}
        stamped = {pk: at.timestamp() for pk, at in Event.objects.filter(
            merchant__slug__startswith="faults-", entity="invoice", to_status="stamped").values_list(
            "object_id").annotate(at=Min("created_at")).values_list("object_id", "at")}
        return counting.stamp_latency_by_phase(created, stamped, self.phase_bounds), stamped

    # --- tear-down ------------------------------------------------------------------------------------

    def cleanup(self) -> None:
        self.stop_load.set()
        self.stop_monitor.set()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001
            pass
        for cluster in self.clusters:
            cluster.cleanup()
        if self.web:
            self.web.cleanup()
        kill_group(self.pac_proc, grace=2)
        if self.redis:
            self.redis.cleanup()
        if self.pg:
            self.pg.cleanup()
        if self.args.keep:
            log(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _reported(phase: str) -> bool:
    return phase != "warmup" and not phase.startswith("settle_before_")


def _healthy(requests, base: str) -> bool:
    try:
        return requests.get(base + "/healthz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _http_recovered(samples: list[counting.Sample], fault_end: float, horizon: float) -> float:
    """Seconds after the fault ended until the last failed request (5xx or no answer) before the next fault."""
    last = max((s.end for s in samples if fault_end <= s.start < horizon
                and (s.status is None or s.status >= 500)), default=fault_end)
    return round(last - fault_end, 1)


def main(argv=None) -> int:
    args = parse_args(argv)
    suite = Suite(args)

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        suite.start_servers()
        suite.start_load()
        suite.run_faults()
        drained = suite.drain()
        result = suite.report(drained)
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        return 130
    finally:
        suite.cleanup()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
