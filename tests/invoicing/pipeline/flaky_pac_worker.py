"""``manage.py qcluster --queue stamp`` with a sandbox PAC that answers a transient error to the first
FLAKY_PAC_FAILURES attempts of every document (counted in files under FLAKY_PAC_DIR, so every worker process
of the cluster sees the same count). Started by test_pipe_queues.py with Q_CLUSTER_NAME set to the stamp queue."""

import hashlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from invoicing.pac.base import PacError  # noqa: E402
from invoicing.pac.sandbox import SandboxPac  # noqa: E402

FAILURES = int(os.environ["FLAKY_PAC_FAILURES"])
COUNTS = Path(os.environ["FLAKY_PAC_DIR"])
real_stamp_many = SandboxPac.stamp_many


def flaky_stamp_many(self, sealed_xmls):
    outcomes, passing = [None] * len(sealed_xmls), []
    for i, xml in enumerate(sealed_xmls):
        counter = COUNTS / hashlib.sha256(bytes(xml)).hexdigest()
        seen = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(seen + 1))
        if seen < FAILURES:
            outcomes[i] = PacError("sandbox_failure", "Falla simulada del PAC de prueba.", permanent=False)
        else:
            passing.append(i)
    for i, outcome in zip(passing, real_stamp_many(self, [sealed_xmls[i] for i in passing]), strict=True):
        outcomes[i] = outcome
    return outcomes


SandboxPac.stamp_many = flaky_stamp_many
call_command("qcluster", "--queue", "stamp")
