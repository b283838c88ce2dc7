"""The suite's own servers: PostgreSQL, Redis, gunicorn and the django-q2 workers, each on a free port.

Nothing here touches the machine's shared PostgreSQL (5432) or Redis (6379): the faults stop and kill these
instances only. Every process is started in its own session so that it and its children can be killed as a
group at the end, whatever happened in between.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def kill_group(proc: subprocess.Popen | None, grace: float = 5.0) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc; psutil is not a dependency)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        pass
    found = []  # kernels without CONFIG_PROC_CHILDREN: scan every process's parent
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return sorted(found)


def cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return -1


class Postgres:
    """A throw-away PostgreSQL cluster (initdb into ``root``), trust auth, TCP on 127.0.0.1 only."""

    def __init__(self, root: Path, logs: Path):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        found = shutil.which("initdb")
        if not bins and not found:
            raise RuntimeError("PostgreSQL binaries not found (apt-get install postgresql)")
        self.bin = Path(bins[-1] if bins else found).parent
        self.data = root / "pgdata"
        self.port = free_port()
        self.log = logs / "postgres.log"
        self.proc: subprocess.Popen | None = None
        # initdb refuses to run as root: run the server as the "postgres" system user then.
        self.user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/faults"

    def _run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(args, check=check, capture_output=True, text=True, timeout=timeout, **self._as_user())

    def _as_user(self) -> dict:
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": [],
                "env": {**os.environ, "HOME": self.user.pw_dir, "USER": "postgres"}}

    def init(self) -> None:
        self.data.mkdir(mode=0o700)
        if self.user is not None:
            os.chown(self.data, self.user.pw_uid, self.user.pw_gid)
            os.chown(self.data.parent, self.user.pw_uid, self.user.pw_gid)
            self.data.parent.chmod(0o755)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--locale=C", "--no-sync")

    def start(self) -> None:
        log = open(self.log, "ab")  # noqa: SIM115 - the server process keeps it
        if self.user is not None:
            os.chown(self.log, self.user.pw_uid, self.user.pw_gid)
        # fsync off: the faults crash PostgreSQL, never the OS, so durability against a power cut is not under
        # test and the shared machine is spared the I/O. synchronous_commit stays on: a commit the server
        # acknowledged must survive the server's own crash, and that is under test.
        self.proc = subprocess.Popen(
            [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "fsync=off",
             "-c", "full_page_writes=off", "-c", "max_connections=200", "-c", "shared_buffers=64MB"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **self._as_user())
        log.close()
        wait_until(self.ready, 60, "PostgreSQL to accept connections")

    def ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                                 connect_timeout=1) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def create_database(self) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE faults")

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m fast`` is what a restart does (sessions are terminated); ``immediate`` is a crash."""
        if self.proc is None:
            return
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "stop", "-m", mode, "-w", "-t", "60",
                  check=False)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            kill_group(self.proc, grace=1)
        self.proc = None

    def cleanup(self) -> None:
        if self.proc is not None:
            self.stop("immediate")


class Redis:
    """redis-server without persistence: killing it loses whatever the queue held, as a crash would."""

    def __init__(self, root: Path, logs: Path):
        self.exe = shutil.which("redis-server")
        if not self.exe:
            raise RuntimeError("redis-server not found (apt-get install redis-server)")
        self.root = root
        self.port = free_port()
        self.log = logs / "redis.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.root), "--logfile", str(self.log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until(lambda: port_open(self.port), 20, "Redis")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def cleanup(self) -> None:
        self.kill()


class WebServer:
    """gunicorn serving portal.wsgi, sync workers, as in production."""

    def __init__(self, env: dict, logs: Path, workers: int, port: int):
        self.env = env
        self.port = port
        self.log = logs / "gunicorn.log"
        self.workers = workers
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.log, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "portal.wsgi:application", "-b", f"127.0.0.1:{self.port}",
             "-w", str(self.workers), "--timeout", "60", "--graceful-timeout", "5", "--log-level", "warning"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_until(lambda: port_open(self.port), 60, "gunicorn")

    def cleanup(self) -> None:
        kill_group(self.proc)


QUEUES = ("stamp", "deliver", "bulk")  # infra/queues.py; docs/operations.md "Queues"
ALL_QUEUES = "all"


@dataclass
class Cluster:
    """One ``manage.py qcluster --queue <name>`` process tree: main process → sentinel → workers, monitor,
    pusher. (``name`` "all": the plain ``qcluster``, one child process per queue; the kills then hit all
    three.)"""

    name: str
    env: dict
    log: Path
    proc: subprocess.Popen | None = None
    restarts: int = field(default=0)

    def start(self) -> None:
        log = open(self.log, "ab")  # noqa: SIM115
        command = [sys.executable, str(ROOT / "manage.py"), "qcluster"]
        if self.name != ALL_QUEUES:
            command += ["--queue", self.name]
        self.proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def sentinel_pid(self) -> int | None:
        kids = children(self.proc.pid) if self.running() else []
        if kids and self.name == ALL_QUEUES:  # qcluster → one qcluster --queue per queue, stamp started first
            kids = children(kids[0])
        return kids[0] if kids else None

    def worker_pids(self) -> list[int]:
        """The task workers, not the monitor or the pusher (django-q2 keeps their pids in its Stat)."""
        sentinel = self.sentinel_pid()
        if sentinel is None:
            return []
        kids = children(sentinel)
        try:
            from django_q.status import Stat

            for stat in Stat.get_all():
                if stat.sentinel == sentinel:
                    return [p for p in stat.workers if p in kids]
        except Exception:  # noqa: BLE001 - the broker may be the thing that is down; fall back below
            pass
        return sorted(kids)[:-2]  # spawned first: the workers; then the monitor and the pusher

    def kill_busiest_worker(self, sample_seconds: float = 0.5) -> int | None:
        """SIGKILL the worker that burnt the most CPU over a short sample: the one stamping right now."""
        pids = self.worker_pids()
        if not pids:
            return None
        before = {p: cpu_ticks(p) for p in pids}
        time.sleep(sample_seconds)
        busiest = max(pids, key=lambda p: cpu_ticks(p) - before[p])
        try:
            os.kill(busiest, signal.SIGKILL)
        except ProcessLookupError:
            return None
        return busiest

    def kill9(self) -> None:
        """The whole tree at once, like a host that lost power or an OOM killer that took the cluster."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def cleanup(self) -> None:
        kill_group(self.proc, grace=10)


def start_workers(env: dict, logs: Path, names: list[str]) -> list[Cluster]:
    """Start "the workers": the one place that knows how the product's task workers are run.

    The product runs three queues (stamp, deliver, bulk), each its own django-q2 cluster (docs/operations.md).
    By default each runs as its own ``manage.py qcluster --queue <name>`` process tree, as a process manager
    would run them, so that the worker kill can target the stamping queue alone (``--stamp-cluster``, default
    ``stamp``). ``names`` (``--clusters``/FAULTS_Q_CLUSTERS) picks a subset, or ``all`` for the one plain
    ``qcluster`` that supervises the three queues itself.
    """
    clusters = []
    for name in names or QUEUES:
        if name not in (*QUEUES, ALL_QUEUES):
            raise ValueError(f"unknown queue {name!r}: use {', '.join(QUEUES)} or {ALL_QUEUES}")
        cluster = Cluster(name=name, env=dict(env), log=logs / f"qcluster-{name}.log")
        cluster.start()
        clusters.append(cluster)
    time.sleep(1.0)
    dead = [c.name for c in clusters if not c.running()]
    if dead:
        raise RuntimeError(f"qcluster {', '.join(dead)} did not start; see {logs}")
    return clusters
