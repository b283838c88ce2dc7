"""Two nodes that share no disk: two web processes and two workers, one PostgreSQL, Redis and an S3 store.
Prints ONE JSON object. Not part of `make bench`; the suite runs a lighter version (tests/test_cluster.py).

    .venv/bin/python bench/cluster.py                 # ≈ 30-60 s: 20 invoices
    .venv/bin/python bench/cluster.py --invoices 50 --keep
    .venv/bin/python bench/cluster.py --pgbouncer     # through PgBouncer in transaction mode (apt-get install pgbouncer)

What runs, each process with a VAR_DIR of its own (as on separate machines, MEDIA_ROOT left at its default
VAR_DIR/media):
- web A and web B: gunicorn serving portal.wsgi (DEBUG=0, persistent connections);
- worker A and worker B: `manage.py qcluster` (the three queues, one worker each), Redis broker;
- PostgreSQL: a fresh database `bench_cluster` on the machine's server (DATABASE_URL's host, default
  127.0.0.1:5432), dropped at the end; with `--pgbouncer`, every process reaches it through a PgBouncer
  (transaction pooling, started here on a free port, DB_PREPARED_STATEMENTS=0 and DB_SERVER_SIDE_CURSORS=0);
- Redis: the machine's, 127.0.0.1:6379, database `--redis-db` (14), queue names unique to the run;
- S3: moto's server on a free loopback port, a fresh bucket (STORAGE_S3_*).

The README's flow, for each invoice: a ticket POSTed to web A's API, an invoice POSTed to web A, polled on web A
until stamped; once a worker stored its PDF, the XML, PDF and ZIP are downloaded through the API from web B and
from web A. It checks the bytes match (web A = web B = the bucket's object = the ZIP's members), and that no file
was written under any process's VAR_DIR/media. ``stamp_p50_ms``/``stamp_max_ms`` run from an invoice's POST
to the poll that saw it stamped, and polling starts once every invoice was posted: a sanity figure, not a latency
benchmark (bench/time_to_invoice.py is one).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import io
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.faultkit.services import (  # noqa: E402 - after the path is set
    VENV_BIN,
    free_port,
    kill_group,
    port_open,
    wait_until,
)

QUEUES = ("stamp", "deliver", "bulk")


def log(message: str) -> None:
    print(f"[cluster {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class TwoNodes:
    """Web A, web B, worker A, worker B: separate VAR_DIRs, one database, one Redis, one bucket."""

    def __init__(self, *, root: Path, env: dict, web_workers: int = 1, q_workers: int = 1):
        self.root = root
        run = secrets.token_hex(4)
        self.base_env = {
            **{k: v for k, v in os.environ.items() if k not in ("MEDIA_ROOT", "Q_CLUSTER_NAME", "EMAIL_HOST")},
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "PYTHONPATH": str(ROOT),
            "DEBUG": "0",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_COOKIES": "0",
            "LOG_LEVEL": "WARNING",
            "Q_WORKERS": str(q_workers),
            "INVOICE_STAMP_SLOTS": "2",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            # Queue and site names of this run only: another run on the same Redis database never takes its tasks.
            **{f"Q_QUEUE_{q.upper()}": f"{q}-{run}" for q in QUEUES},
            "Q_SITE_NAME": f"cluster-{run}",
            **env,
        }
        self.web_workers = web_workers
        self.webs: dict[str, tuple[subprocess.Popen, str]] = {}
        self.workers: dict[str, subprocess.Popen] = {}

    def var_dir(self, name: str) -> Path:
        return self.root / name / "var"

    def _env(self, name: str, **extra) -> dict:
        var = self.var_dir(name)
        var.mkdir(parents=True, exist_ok=True)
        return {**self.base_env, "VAR_DIR": str(var), **extra}

    def _spawn(self, name: str, argv: list[str], env: dict) -> subprocess.Popen:
        out = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        return proc

    def start(self, timeout: float = 120) -> None:
        for name in ("web-a", "web-b"):
            port = free_port()
            env = self._env(name, PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")
            proc = self._spawn(name, [str(VENV_BIN / "gunicorn"), "portal.wsgi:application", "-b",
                                      f"127.0.0.1:{port}", "-w", str(self.web_workers), "--timeout", "60",
                                      "--graceful-timeout", "5", "--log-level", "warning"], env)
            self.webs[name] = (proc, f"http://127.0.0.1:{port}")
        for name in ("worker-a", "worker-b"):
            self.workers[name] = self._spawn(name, [sys.executable, str(ROOT / "manage.py"), "qcluster"],
                                             self._env(name))
        for name, (proc, url) in self.webs.items():
            wait_until(lambda n=name, p=proc, u=url: self._alive(n, p) and _healthy(u), timeout, f"{name}'s /healthz")
        # Each worker warms the CFDI engine before its clusters start; a cluster that runs publishes its stats in
        # Redis every few seconds: wait for all three queues of both workers, so the flow meets warm workers.
        wait_until(lambda: self.check_running() or self.clusters_running() >= 2 * len(QUEUES), timeout,
                   "both workers' clusters", 0.5)

    def clusters_running(self) -> int:
        import redis

        connection = redis.Redis.from_url(self.base_env["REDIS_URL"])
        try:
            return len(connection.keys(f"django_q:{self.base_env['Q_SITE_NAME']}:cluster:*"))
        finally:
            connection.close()

    def _alive(self, name: str, proc: subprocess.Popen) -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited ({proc.returncode}):\n{self.log_tail(name)}")
        return True

    def check_running(self) -> None:
        """Raises, with its log, if a process died."""
        for name, proc in {**{n: p for n, (p, _) in self.webs.items()}, **self.workers}.items():
            self._alive(name, proc)

    def url(self, name: str) -> str:
        return self.webs[name][1]

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def media_files(self) -> list[str]:
        """Files under any process's VAR_DIR/media: the documents must all be in the bucket."""
        found = []
        for name in (*self.webs, *self.workers):
            media = self.var_dir(name) / "media"
            if media.exists():
                found += [str(p) for p in media.rglob("*") if p.is_file()]
        return found

    def stop(self) -> None:
        for proc in self.workers.values():
            kill_group(proc, grace=10)
        for proc, _ in self.webs.values():
            kill_group(proc)


def _healthy(url: str) -> bool:
    import requests

    try:
        return requests.get(url + "/healthz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def ticket_body(branch: str, number: str) -> dict:
    """The README's ticket (one line, IVA 16 %)."""
    sold_at = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat(timespec="seconds")
    return {"branch": branch, "number": number, "sold_at": sold_at, "payment_form": "01", "total": "116.00",
            "lines": [{"product_code": "50202306", "unit_code": "H87", "description": "REFRESCO 600 ML",
                       "quantity": "2", "unit_price": "58.00",
                       "taxes": [{"tax": "002", "factor": "Tasa", "rate": "0.160000"}]}]}


RECEPTOR = {"rfc": "CACX7605101P8", "name": "XOCHILT CASAS CHAVEZ", "tax_regime": "612", "postal_code": "36257",
            "cfdi_use": "G03", "emails": ["cliente@example.com"]}


def run_flow(nodes: TwoNodes, *, api_key: str, branch: str, invoices: int, pdf_stored, bucket_object,
             timeout: float = 90) -> dict:
    """The README's flow through web A, the documents read back from web B. ``pdf_stored(invoice_id)`` says the
    name the worker stored the PDF under (or ""), ``bucket_object(name)`` reads it from the bucket directly."""
    import requests

    a, b = requests.Session(), requests.Session()
    for session in (a, b):
        session.headers["Authorization"] = f"Bearer {api_key}"
    web_a, web_b = nodes.url("web-a"), nodes.url("web-b")
    run = secrets.token_hex(3).upper()
    created: list[tuple[int, float, str]] = []
    for i in range(invoices):
        ticket = a.post(f"{web_a}/api/v1/tickets", json=ticket_body(branch, f"C-{run}-{i}"), timeout=30)
        assert ticket.status_code == 201, ticket.text
        started = time.monotonic()
        invoice = a.post(f"{web_a}/api/v1/invoices", json={"ticket_ids": [ticket.json()["id"]], "receptor": RECEPTOR},
                         headers={"Idempotency-Key": f"cluster-{run}-{i}"}, timeout=30)
        assert invoice.status_code == 202, invoice.text
        created.append((invoice.json()["id"], started, invoice.json()["status"]))
    stamped_ms, pending = {}, {pk: started for pk, started, _ in created}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        nodes.check_running()
        for pk in list(pending):
            body = a.get(f"{web_a}/api/v1/invoices/{pk}", timeout=30).json()
            if body["status"] == "stamped":
                stamped_ms[pk] = (time.monotonic() - pending.pop(pk)) * 1000
            elif body["status"] == "failed":
                raise AssertionError(f"invoice {pk} failed: {body['error']}")
        time.sleep(0.1)
    assert not pending, f"not stamped after {timeout} s: {sorted(pending)}"
    names = {}
    for pk, _, _ in created:  # the workers render and store the PDF after stamping
        names[pk] = wait_until(lambda pk=pk: pdf_stored(pk), timeout, f"invoice {pk}'s PDF in the bucket", 0.2)
    mismatches, downloads = [], 0
    for pk, _, _ in created:
        stored = bucket_object(names[pk])
        got = {}
        for label, session, base in (("a", a, web_a), ("b", b, web_b)):
            for fmt in ("xml", "pdf", "zip"):
                response = session.get(f"{base}/api/v1/invoices/{pk}/{fmt}", timeout=60)
                assert response.status_code == 200, (label, fmt, response.status_code, response.text[:300])
                got[(label, fmt)] = response.content
                downloads += 1
        code = b.get(f"{web_b}/api/v1/invoices/{pk}", timeout=30).json()
        uuid = code["uuid"]
        with zipfile.ZipFile(io.BytesIO(got[("b", "zip")])) as zf:
            in_zip = {n.rsplit(".", 1)[1]: zf.read(n) for n in zf.namelist()}
        same = (got[("a", "pdf")] == got[("b", "pdf")] == stored == in_zip["pdf"]
                and got[("a", "xml")] == got[("b", "xml")] == in_zip["xml"] and uuid.encode() in got[("b", "xml")])
        if not same:
            mismatches.append(pk)
    files = nodes.media_files()
    latencies = sorted(stamped_ms.values())
    return {
        "invoices": invoices,
        "stamped": len(stamped_ms),
        "pdfs_in_bucket": sum(1 for n in names.values() if n),
        "downloads": downloads,
        "bytes_match": not mismatches,
        "mismatched_invoices": mismatches,
        "media_files": len(files),
        "media_file_names": files[:10],
        "stamp_p50_ms": round(statistics.median(latencies), 1),
        "stamp_max_ms": round(latencies[-1], 1),
        "passed": not mismatches and not files and len(stamped_ms) == invoices,
    }


# --- the bench's own services -------------------------------------------------------------------------


class PgBouncer:
    """PgBouncer in transaction mode in front of one database (run as the "postgres" user when we are root:
    it refuses to run as root)."""

    def __init__(self, root: Path, *, host: str, port: int, dbname: str, user: str):
        self.exe = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(self.exe).exists():
            raise RuntimeError("pgbouncer not found (apt-get install pgbouncer)")
        self.dir = root / "pgbouncer"
        self.dir.mkdir()
        self.port = free_port()
        self.dbname, self.user = dbname, user
        (self.dir / "userlist.txt").write_text(f'"{user}" ""\n')
        (self.dir / "pgbouncer.ini").write_text(PGBOUNCER_INI.format(
            dbname=dbname, host=host, port=port, listen=self.port, dir=self.dir, user=user))
        self.proc: subprocess.Popen | None = None

    def version(self) -> str:
        out = subprocess.run([self.exe, "--version"], capture_output=True, text=True).stdout
        return out.splitlines()[0] if out else ""

    def start(self) -> None:
        import pwd

        kwargs = {}
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            for path in (self.dir, *self.dir.iterdir()):
                os.chown(path, pw.pw_uid, pw.pw_gid)
            self.dir.parent.chmod(0o755)
            kwargs = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        out = open(self.dir / "pgbouncer.out", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([self.exe, str(self.dir / "pgbouncer.ini")], stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True, **kwargs)
        out.close()
        wait_until(lambda: port_open(self.port), 20, "PgBouncer")

    @property
    def url(self) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{self.dbname}"

    def stop(self) -> None:
        kill_group(self.proc)


PGBOUNCER_INI = """\
[databases]
{dbname} = host={host} port={port} dbname={dbname}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
auth_file = {dir}/userlist.txt
pool_mode = transaction
max_client_conn = 400
default_pool_size = 20
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
logfile = {dir}/pgbouncer.log
pidfile = {dir}/pgbouncer.pid
"""


def _psql_db(url, sql: str) -> None:
    subprocess.run(["psql", "-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432), "-U",
                    url.username or "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql],
                   check=True, capture_output=True, text=True)


def main() -> None:
    from urllib.parse import urlsplit

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=20)
    parser.add_argument("--redis-db", type=int, default=14)
    parser.add_argument("--pgbouncer", action="store_true", help="every process through PgBouncer (transaction mode)")
    parser.add_argument("--prepared", action="store_true",
                        help="with --pgbouncer: leave DB_PREPARED_STATEMENTS on (fails before PgBouncer 1.21)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir with every process's log")
    args = parser.parse_args()

    started = time.monotonic()
    server = urlsplit(os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres")
    dbname = "bench_cluster"
    _psql_db(server, f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
    _psql_db(server, f"CREATE DATABASE {dbname}")
    root = Path(tempfile.mkdtemp(prefix="cluster-"))
    log(f"temp dir {root}")
    bouncer = nodes = moto = None
    try:
        from moto.server import ThreadedMotoServer

        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        s3_url = "http://{}:{}".format(*moto.get_host_and_port())
        bucket = f"facturas-{secrets.token_hex(4)}"
        direct_url = f"postgres://{server.username or 'postgres'}@{server.hostname or '127.0.0.1'}:{server.port or 5432}/{dbname}"
        database_url, db_env = direct_url, {}
        if args.pgbouncer:
            bouncer = PgBouncer(root, host=server.hostname or "127.0.0.1", port=server.port or 5432, dbname=dbname,
                                user=server.username or "postgres")
            bouncer.start()
            database_url = bouncer.url
            db_env = {"DB_PREPARED_STATEMENTS": "1" if args.prepared else "0", "DB_SERVER_SIDE_CURSORS": "0"}
        env = {
            "DATABASE_URL": database_url, **db_env,
            "REDIS_URL": f"redis://127.0.0.1:6379/{args.redis_db}",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "FIELD_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "STORAGE_S3_BUCKET": bucket, "STORAGE_S3_ENDPOINT_URL": s3_url, "STORAGE_S3_REGION": "us-east-1",
            "STORAGE_S3_ACCESS_KEY_ID": "bench", "STORAGE_S3_SECRET_ACCESS_KEY": "bench",
        }
        # This process: the same settings as the nodes (its own VAR_DIR), for migrate, the data and the checks.
        os.environ.update({**env, "DJANGO_SETTINGS_MODULE": "bench.settings", "VAR_DIR": str(root / "bench" / "var"),
                           "DEBUG": "0", "LOG_LEVEL": "WARNING"})
        import django

        django.setup()
        import logging

        import boto3

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server: a line per request otherwise
        from django.core.management import call_command

        s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="bench",
                          aws_secret_access_key="bench")
        s3.create_bucket(Bucket=bucket)
        log("migrating" + (" through PgBouncer" if bouncer else ""))
        call_command("migrate", verbosity=0)
        api_key = setup_data()
        nodes = TwoNodes(root=root, env=env)
        log("starting web A, web B, worker A, worker B")
        nodes.start()
        boot = time.monotonic() - started
        log(f"flow: {args.invoices} invoices through web A, documents from web B")
        result = run_flow(nodes, api_key=api_key, branch="CENTRO", invoices=args.invoices,
                          pdf_stored=pdf_name, bucket_object=lambda name: s3.get_object(
                              Bucket=bucket, Key=name)["Body"].read())
        result.update({
            "web_processes": 2, "worker_processes": 2, "separate_var_dirs": True,
            "database": "pgbouncer (transaction pooling)" if bouncer else "postgresql",
            "pgbouncer_version": bouncer.version() if bouncer else None,
            "prepared_statements": not bouncer or args.prepared,
            "storage": "s3 (moto)", "objects_in_bucket": s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0),
            "boot_seconds": round(boot, 1), "seconds": round(time.monotonic() - started, 1),
        })
        print(json.dumps(result))
    finally:
        if nodes is not None:
            nodes.stop()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 - Django may never have been set up
            pass
        if bouncer is not None:
            bouncer.stop()
        if moto is not None:
            moto.stop()
        _psql_db(server, f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def setup_data() -> str:
    """A merchant with a branch, a test CSD and the sandbox PAC; returns an API key (tickets, invoices)."""
    from invoicing.cfdi.testcsd import generate_test_csd
    from invoicing.services.certificates import certificate_install
    from tickets.catalogs import PostalCode
    from tickets.models import Branch, Merchant
    from tickets.services import api_key_create

    merchant = Merchant.objects.create(slug="cluster", legal_name="ESCUELA KEMPER URGATE", rfc="EKU9003173C9",
                                       tax_regime="601", pac="sandbox", self_invoice_window="days",
                                       self_invoice_days=30)
    Branch.objects.create(merchant=merchant, code="CENTRO", name="Centro", postal_code="06600")
    for code in ("06600", "36257"):
        PostalCode.objects.get_or_create(code=code, defaults={"state": "CMX", "time_zone_name": "Tiempo del Centro",
                                                              "time_zone": "America/Mexico_City"})
    cer, key, password = generate_test_csd(merchant.rfc, merchant.legal_name)
    certificate_install(merchant=merchant, cer=cer, key=key, password=password)
    return api_key_create(merchant=merchant, name="cluster", scopes=["tickets", "invoices"])[1]


def pdf_name(invoice_id: int) -> str:
    from invoicing.models import Invoice

    return Invoice.objects.filter(pk=invoice_id).values_list("pdf", flat=True).first() or ""


if __name__ == "__main__":
    main()
