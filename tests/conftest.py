"""Shared fixtures: two merchants (to prove isolation), branches, tickets, API clients."""

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from hypothesis import settings as hypothesis_settings

from tickets.models import Branch, Merchant
from tickets.services import LineInput, ticket_create

# SAT's official files (XSD, XSLT, test CSDs, stamped samples) live in ../shared/sat beside the checkout on
# the team's machines and in CI, never in the repository. The suite gets what it needs from the project and
# its dependencies; only the tests that cross-check against those official copies ask for ``shared_sat`` and
# are skipped, saying why, in a clone with nothing beside it. This is the one place that knows the path.
SHARED_SAT = Path(__file__).resolve().parents[1].parent / "shared" / "sat"
SHARED_SAT_MISSING = "../shared/sat not present: official-file cross-check skipped"


@pytest.fixture(scope="session")
def shared_sat() -> Path:
    """``../shared/sat`` (SAT's official files); skips the requesting test when it is not beside the checkout."""
    if not SHARED_SAT.is_dir():
        pytest.skip(SHARED_SAT_MISSING)
    return SHARED_SAT


# Property tests run the same examples on every run (a CI run must not fail on a draw the previous one never
# made); HYPOTHESIS_PROFILE=random sweeps new examples while developing.
hypothesis_settings.register_profile("deterministic", derandomize=True)
hypothesis_settings.register_profile("random", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """One PostgreSQL test database per pytest process, so parallel runs on one server don't collide."""
    from django.conf import settings

    for db in settings.DATABASES.values():
        if db["ENGINE"].endswith("postgresql"):
            db.setdefault("TEST", {})["NAME"] = f"test_{db['NAME']}_{os.getpid()}"


@pytest.fixture
def merchant(db):
    return Merchant.objects.create(slug="kemper", legal_name="ESCUELA KEMPER URGATE", rfc="EKU9003173C9",
                                   tax_regime="601")


@pytest.fixture
def branch(merchant):
    return Branch.objects.create(merchant=merchant, code="CENTRO", name="Centro", postal_code="06600")


@pytest.fixture
def other_merchant(db):
    return Merchant.objects.create(slug="otro", legal_name="XOCHILT CASAS CHAVEZ", rfc="CACX7605101P8",
                                   tax_regime="612")


@pytest.fixture
def other_branch(other_merchant):
    return Branch.objects.create(merchant=other_merchant, code="CENTRO", name="Centro", postal_code="64000")


@pytest.fixture
def make_ticket():
    def make(branch, number="T1", total=Decimal("116.00"), sold_at=None, **kwargs):
        line = LineInput(product_code="50202306", unit_code="H87", description="REFRESCO", quantity=Decimal("1"),
                         unit_price=total)
        return ticket_create(merchant=branch.merchant, branch=branch, number=number,
                             sold_at=sold_at or timezone.now() - dt.timedelta(hours=1), lines=[line], **kwargs)

    return make


@pytest.fixture
def ticket(branch, make_ticket):
    return make_ticket(branch)


@pytest.fixture
def certificate(merchant):
    from invoicing.cfdi.testcsd import generate_test_csd
    from invoicing.services.certificates import certificate_install

    cer, key, password = generate_test_csd(merchant.rfc, merchant.legal_name)
    return certificate_install(merchant=merchant, cer=cer, key=key, password=password)


@pytest.fixture
def receptor():
    from invoicing.services import ReceptorData

    return ReceptorData(rfc="CACX7605101P8", name="XOCHILT CASAS CHAVEZ", tax_regime="612", postal_code="36257",
                        cfdi_use="G03", emails=("xochilt@example.com",))


@pytest.fixture
def make_staff(db):
    """A back-office user of ``merchant`` with the given permissions (default: all of tickets and invoicing)."""
    from django.contrib.auth.models import Permission, User

    from tickets.models import MerchantMembership

    def make(merchant, username="staff", permissions=None):
        user = User.objects.create_user(username, password="x", is_staff=True)
        if permissions is None:
            permissions = Permission.objects.filter(content_type__app_label__in=["invoicing", "tickets"])
        user.user_permissions.set(permissions)
        MerchantMembership.objects.create(user=user, merchant=merchant)
        return user

    return make



@pytest.fixture
def point_cache_at(settings):
    """``point_cache_at(redis_url)``: CACHES as portal/settings.py builds them for CACHE_URL/REDIS_URL."""

    def point(location: str, timeout_s: float = 0.25):
        settings.CACHES = {"default": {"BACKEND": "infra.resilient_cache.ResilientRedisCache", "LOCATION": location,
                                       "OPTIONS": {"socket_connect_timeout": timeout_s, "socket_timeout": timeout_s}}}

    return point


@pytest.fixture
def redis_down(point_cache_at):
    """The cache is a real Redis client pointed at a closed port: every call to Redis is refused."""
    point_cache_at("redis://127.0.0.1:1/0")


@pytest.fixture
def still_clock(monkeypatch):
    """Rate-limit counts land in one window, whatever the wall clock crosses while the test runs."""
    import time
    import types

    from infra import ratelimit

    now = (time.time() // 3600) * 3600 + 30
    monkeypatch.setattr(ratelimit, "time", types.SimpleNamespace(time=lambda: now))


@pytest.fixture
def queued_tasks(monkeypatch):
    """What code puts on the task queues (infra.queues.enqueue), as (queue, func, args), instead of the broker.
    ``run(i)`` runs the i-th task as its worker would."""
    from django.conf import settings

    class Queued(list):
        def run(self, index=0):
            import importlib

            _, func, args = self[index]
            module, name = func.rsplit(".", 1)
            return getattr(importlib.import_module(module), name)(*args)

    out = Queued()

    def fake(func, *args, cluster=None, **kw):
        queue = next(q for q, name in settings.Q_QUEUES.items() if name == cluster)
        out.append((queue, func, args))
        return f"task-{len(out)}"

    monkeypatch.setattr("django_q.tasks.async_task", fake)
    monkeypatch.setattr("infra.queues.broker", lambda queue: None)
    return out


@pytest.fixture(autouse=True)
def _fresh_sat_caches():
    """Postal-code zones and c_TasaOCuota are cached per process; every test starts from its own database."""
    from tickets.catalogs import tax_rate_catalog_clear
    from tickets.zones import cache_clear

    cache_clear()
    tax_rate_catalog_clear()
    yield
    cache_clear()
    tax_rate_catalog_clear()


# What a POS developer would give openapi-python-client besides the schema: downloads read as files
# (the generator reads only JSON, text and octet-stream bodies).
CLIENT_GENERATOR_CONFIG = """\
package_name_override: autofactura_client
project_name_override: autofactura-client
post_hooks: []
content_type_overrides:
  application/xml: application/octet-stream
  application/pdf: application/octet-stream
  application/zip: application/octet-stream
"""


@pytest.fixture(scope="session")
def generated_api_client(tmp_path_factory):
    """The package ``openapi-python-client`` generates from /api/schema/, offline, in a temporary directory,
    importable as ``autofactura_client``. Generation must not warn: a warning is an operation it left out."""
    import json
    import subprocess
    import sys

    from django.test import Client

    out = tmp_path_factory.mktemp("cliente")
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    (out / "schema.json").write_text(json.dumps(schema.json()), encoding="utf-8")
    (out / "config.yaml").write_text(CLIENT_GENERATOR_CONFIG, encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "openapi_python_client", "generate", "--path", "schema.json",
                          "--config", "config.yaml", "--meta", "none", "--output-path", "autofactura_client",
                          "--fail-on-warning"], cwd=out, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "Warning" not in run.stdout + run.stderr, run.stdout + run.stderr
    sys.path.insert(0, str(out))
    try:
        import autofactura_client
    finally:
        sys.path.remove(str(out))
    return autofactura_client


@pytest.fixture(autouse=True)
def _error_codes_are_catalogued(monkeypatch):
    """Every error an API call of any test answers carries a code of the documented catalogue
    (portal/api_errors.py), so the API's documentation cannot fall behind the code."""
    from infra.api import errors
    from portal.api_errors import CATALOGUE

    seen = []
    real = errors.envelope

    def envelope(code, message, details=None):
        seen.append(code)
        return real(code, message, details)

    monkeypatch.setattr(errors, "envelope", envelope)
    yield
    unknown = sorted({code for code in seen if code not in CATALOGUE})
    assert not unknown, f"códigos de error de la API sin describir en portal/api_errors.py: {unknown}"


@pytest.fixture
def postal_codes(db):
    """``postal_codes("22000", "06600")``: those rows of SAT's c_CodigoPostal, as load_sat_catalogs loads them."""
    from tickets.catalogs import PostalCode

    known = {
        "06600": ("CMX", "0", "Tiempo del Centro", "America/Mexico_City"),
        "22000": ("BCN", "1", "Tiempo del Noroeste", "America/Tijuana"),
        "21100": ("BCN", "1", "Tiempo del Noroeste", "America/Tijuana"),
        "32000": ("CHH", "1", "Tiempo del Centro en Frontera", "America/Ojinaga"),
        "77500": ("ROO", "0", "Tiempo del Sureste", "America/Cancun"),
        "64000": ("NLE", "0", "Tiempo del Centro", "America/Mexico_City"),
        "83000": ("SON", "0", "Tiempo del Pacífico", "America/Hermosillo"),
        "36257": ("GUA", "0", "Tiempo del Centro", "America/Mexico_City"),  # the receptor fixture's
    }

    def load(*codes):
        from tickets.zones import cache_clear

        # Once the catalog has rows, the receptor's postal code must be in it too (tickets.catalogs).
        for code in (*codes, "36257") if codes else known:
            state, border, tz_name, tz = known[code]
            PostalCode.objects.update_or_create(code=code, defaults={
                "state": state, "border_incentive": border, "time_zone_name": tz_name, "time_zone": tz})
        cache_clear()

    return load


@pytest.fixture
def run_together():
    """``run_together([fn, …])``: call the functions at once, one thread and database connection each, released
    together by a barrier; returns (results, exceptions)."""
    import threading

    from django.db import connections

    def run_all(functions, timeout=120):
        barrier = threading.Barrier(len(functions))
        results, errors = [None] * len(functions), []

        def run(i, fn):
            try:
                barrier.wait()
                results[i] = fn()
            except Exception as exc:  # noqa: BLE001 - collected and asserted by the test
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(functions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout)
        assert not any(t.is_alive() for t in threads)
        return results, errors

    return run_all


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on a free loopback port (threads of this process): ``s3_server.url``. Other processes (the
    cluster test's web and worker processes) reach it over loopback too."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    server.url = f"http://{host}:{port}"
    yield server
    server.stop()


S3_TEST_KEYS = {"STORAGE_S3_ACCESS_KEY_ID": "testing", "STORAGE_S3_SECRET_ACCESS_KEY": "testing",
                "STORAGE_S3_REGION": "us-east-1"}


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh, empty bucket on the moto server: ``s3_bucket.env`` are the STORAGE_S3_* variables that point a
    process at it, ``s3_bucket.objects()`` the keys and bytes stored there."""
    import uuid

    import boto3

    name = f"facturas-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_server.url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket=name)

    class Bucket:
        pass

    bucket = Bucket()
    bucket.name, bucket.client = name, client
    bucket.env = {"STORAGE_S3_BUCKET": name, "STORAGE_S3_ENDPOINT_URL": s3_server.url, **S3_TEST_KEYS}

    def objects() -> dict[str, bytes]:
        listed = client.list_objects_v2(Bucket=name).get("Contents", [])
        return {o["Key"]: client.get_object(Bucket=name, Key=o["Key"])["Body"].read() for o in listed}

    bucket.objects = objects
    return bucket


@pytest.fixture
def s3_storage(settings, s3_bucket, tmp_path, monkeypatch):
    """Django's default storage is the S3 bucket, configured from STORAGE_S3_* as portal/settings.py does; MEDIA_ROOT
    points at an empty directory that must stay so."""
    from portal.storage import S3_BACKEND, default_storage_from_env

    for key, value in s3_bucket.env.items():
        monkeypatch.setenv(key, value)
    default = default_storage_from_env()
    assert default["BACKEND"] == S3_BACKEND
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.STORAGES = {**settings.STORAGES, "default": default}
    return s3_bucket
