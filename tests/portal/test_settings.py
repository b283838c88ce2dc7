"""Settings must fail loudly, naming the variable, when production secrets are missing."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_bool, env_int, env_str

ROOT = Path(__file__).resolve().parents[2]


def _import_settings(env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "FIELD_ENCRYPTION_KEY", "DEBUG"}}
    clean.update(env)
    return subprocess.run([sys.executable, "-c", "import portal.settings"], cwd=ROOT, env=clean,
                          capture_output=True, text=True, timeout=60)


def test_missing_secret_key_stops_start_up_when_debug_is_off(tmp_path):
    proc = _import_settings({"DEBUG": "0", "FIELD_ENCRYPTION_KEY": "x" * 44, "VAR_DIR": str(tmp_path)})
    assert proc.returncode != 0
    assert "SECRET_KEY is not set" in proc.stderr


def test_missing_encryption_key_stops_start_up_when_debug_is_off(tmp_path):
    proc = _import_settings({"DEBUG": "0", "SECRET_KEY": "s" * 50, "VAR_DIR": str(tmp_path)})
    assert proc.returncode != 0
    assert "FIELD_ENCRYPTION_KEY is not set" in proc.stderr


def test_production_settings_start_with_both_secrets(tmp_path):
    proc = _import_settings({"DEBUG": "0", "SECRET_KEY": "s" * 50, "FIELD_ENCRYPTION_KEY": "k" * 44,
                             "VAR_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr


def test_secret_can_come_from_a_file(tmp_path, monkeypatch):
    secret = tmp_path / "secret"
    secret.write_text("from-file\n")
    monkeypatch.setenv("MY_SECRET_FILE", str(secret))
    monkeypatch.setenv("MY_SECRET", "from-env")
    assert env_str("MY_SECRET") == "from-file"


def test_unreadable_secret_file_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("MY_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="MY_SECRET_FILE"):
        env_str("MY_SECRET")


@pytest.mark.parametrize("raw,expected", [("1", True), ("true", True), ("no", False), ("0", False)])
def test_env_bool(monkeypatch, raw, expected):
    monkeypatch.setenv("FLAG", raw)
    assert env_bool("FLAG") is expected


def test_bad_boolean_and_integer_name_the_variable(monkeypatch):
    monkeypatch.setenv("FLAG", "maybe")
    monkeypatch.setenv("COUNT", "many")
    with pytest.raises(ImproperlyConfigured, match="FLAG"):
        env_bool("FLAG")
    with pytest.raises(ImproperlyConfigured, match="COUNT"):
        env_int("COUNT", 1)


def test_database_url_switches_to_postgresql_with_persistent_connections(tmp_path):
    code = ("from django.conf import settings as s; import django; django.setup(); "
            "d=s.DATABASES['default']; print(d['ENGINE'], d['CONN_MAX_AGE'], s.Q_CLUSTER.get('redis'))")
    env = {k: v for k, v in os.environ.items()}
    env.update({"DATABASE_URL": "postgres://u@db.example:5432/app", "REDIS_URL": "redis://127.0.0.1:6379/3",
                "DJANGO_SETTINGS_MODULE": "portal.settings", "VAR_DIR": str(tmp_path)})
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["django.db.backends.postgresql", "600", "redis://127.0.0.1:6379/3"]


def _settings_of(tmp_path, **env_vars) -> list[str]:
    code = ("from django.conf import settings as s; import django; django.setup(); c=s.CACHES['default']; "
            "print(c['BACKEND'], c.get('LOCATION'), c.get('OPTIONS', {}).get('socket_connect_timeout'), "
            "c.get('OPTIONS', {}).get('socket_timeout'), s.Q_CLUSTER.get('redis'), s.Q_CLUSTER.get('orm'))")
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CACHE_URL", "CACHE_TIMEOUT_MS"}}
    env.update({"DJANGO_SETTINGS_MODULE": "portal.settings", "VAR_DIR": str(tmp_path), **env_vars})
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_redis_cache_is_the_resilient_one_with_short_timeouts(tmp_path):
    assert _settings_of(tmp_path, REDIS_URL="redis://127.0.0.1:6379/3") == [
        "infra.resilient_cache.ResilientRedisCache", "redis://127.0.0.1:6379/3", "0.25", "0.25",
        "redis://127.0.0.1:6379/3", "None"]


def test_cache_url_alone_puts_the_cache_on_redis_and_keeps_the_queue_in_the_database(tmp_path):
    assert _settings_of(tmp_path, CACHE_URL="redis://127.0.0.1:6379/4", CACHE_TIMEOUT_MS="100") == [
        "infra.resilient_cache.ResilientRedisCache", "redis://127.0.0.1:6379/4", "0.1", "0.1", "None", "default"]


def test_without_redis_the_cache_is_per_process(tmp_path):
    assert _settings_of(tmp_path)[:2] == ["django.core.cache.backends.locmem.LocMemCache", "None"]
