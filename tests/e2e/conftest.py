"""End-to-end fixtures: a live server, a REAL django-q2 worker (``manage.py qcluster`` subprocess) on the same
PostgreSQL test database, the sandbox PAC, and Debian's headless chromium driven by Playwright.

PostgreSQL only: on SQLite pytest-django's test database is in memory, so a worker process cannot share it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", "artifacts")) / "e2e"
# Playwright's sync API runs an event loop in this thread; the ORM calls of the test itself are still sync.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config, items):
    reason = None
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        reason = ("e2e needs PostgreSQL (DATABASE_URL): the django-q2 worker runs in its own process and cannot "
                  "share SQLite's in-memory test database")
    elif not Path(CHROMIUM).exists():
        reason = f"e2e needs Debian's chromium at {CHROMIUM} (apt-get install chromium)"
    here = str(Path(__file__).parent)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.e2e)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(scope="session")
def mail_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("mail")


# Module-scoped: a worker left running would keep polling the test database (schedules, sweepers) while the
# rest of the suite runs, taking its tasks and its locks.
@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, mail_dir, tmp_path_factory, request):
    """``manage.py qcluster`` against the test database; its stdout/stderr go to the artifacts folder. A test
    module's ``WORKER_ENV`` (e.g. the sandbox PAC's latency) is added to the worker's environment."""
    db = connection.settings_dict
    url = f"postgres://{db['USER'] or ''}{':' + db['PASSWORD'] if db['PASSWORD'] else ''}@{db['HOST'] or '127.0.0.1'}" \
          f":{db['PORT'] or 5432}/{db['NAME']}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "worker_settings",
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "E2E_MAIL_DIR": str(mail_dir),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "SECRET_KEY": settings.SECRET_KEY,
        "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY,
        "Q_WORKERS": "2",
        "REDIS_URL": "",
        **getattr(request.module, "WORKER_ENV", {}),
    }
    env.pop("REDIS_URL")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = request.module.__name__.rsplit(".", 1)[-1]
    log = open(ARTIFACTS / f"qcluster-{name}.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "qcluster"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    time.sleep(1.0)
    if proc.poll() is not None:
        log.close()
        raise RuntimeError("qcluster no arrancó; ver " + log.name)
    yield proc
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(locale="es-MX", viewport={"width": 412, "height": 915}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()


@pytest.fixture
def shot(request):
    """shot(page, "step") saves ARTIFACTS_DIR/e2e/<test>-<nn>-<step>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    counter = iter(range(1, 100))

    def take(pg, step: str) -> None:
        pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{next(counter):02d}-{step}.png"), full_page=True)

    return take


@pytest.fixture
def shop(transactional_db, worker):
    """A merchant with a branch and an installed test CSD, stamping with the sandbox PAC."""
    from invoicing.cfdi.testcsd import generate_test_csd
    from invoicing.services.certificates import certificate_install
    from tickets.catalogs import PostalCode
    from tickets.models import Branch, Merchant

    merchant = Merchant.objects.create(slug="tienda", legal_name="ESCUELA KEMPER URGATE", rfc="EKU9003173C9",
                                       tax_regime="601", brand_color="#7A1FA2", pac="sandbox")
    Branch.objects.create(merchant=merchant, code="CENTRO", name="Centro", postal_code="06600")
    cer, key, password = generate_test_csd(merchant.rfc, merchant.legal_name)
    certificate_install(merchant=merchant, cer=cer, key=key, password=password)
    for code in ("06600", "01160", "64000"):
        PostalCode.objects.create(code=code, state="CMX", time_zone_name="Tiempo del Centro",
                                  time_zone="America/Mexico_City")
    return merchant


@pytest.fixture
def mailbox(mail_dir):
    for f in mail_dir.iterdir():
        f.unlink()

    def read(timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            files = sorted(mail_dir.iterdir())
            if files:
                return "\n".join(f.read_text(errors="replace") for f in files)
            time.sleep(0.3)
        return ""

    return read


@pytest.fixture
def wait_for():
    def wait(predicate, timeout: float = 30, every: float = 0.3):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(every)
        raise AssertionError("timed out waiting")

    return wait
