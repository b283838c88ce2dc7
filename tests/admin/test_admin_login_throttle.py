"""/admin/login/ is throttled per username and IP (issue 14, low finding): django-axes, counters in the database."""

import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.db.models import F
from django.test import Client

LOGIN = "/admin/login/?next=/admin/"
PASSWORD = "una-clave-larga-y-correcta"


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def ana(db):
    return User.objects.create_user("ana", password=PASSWORD, is_staff=True)


def login(username, password, ip="203.0.113.7"):
    client = Client()
    response = client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)
    return response, client


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def fail(times, username="ana", ip="203.0.113.7"):
    return [login(username, "equivocada", ip)[0].status_code for _ in range(times)]


def test_the_fifth_failure_locks_out_and_the_right_password_then_fails_too(settings, ana):
    assert settings.AXES_FAILURE_LIMIT == 5
    assert fail(4) == [200] * 4  # the login form again, with Django's error
    response, _ = login("ana", "equivocada")
    assert response.status_code == 429
    page = response.content.decode()
    assert "Demasiados intentos fallidos" in page and "15 minutos" in page
    response, client = login("ana", PASSWORD)
    assert response.status_code == 429 and not logged_in(client)


def test_other_users_and_other_addresses_are_not_affected(ana):
    User.objects.create_user("beto", password=PASSWORD, is_staff=True)
    fail(5)
    response, client = login("beto", PASSWORD)  # same IP, another user
    assert response.status_code == 302 and logged_in(client)
    response, client = login("ana", PASSWORD, ip="198.51.100.20")  # same user, another IP
    assert response.status_code == 302 and logged_in(client)


def test_the_lockout_ends_after_the_cool_off(ana):
    fail(5)
    assert login("ana", PASSWORD)[0].status_code == 429
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - dt.timedelta(minutes=16))
    response, client = login("ana", PASSWORD)
    assert response.status_code == 302 and logged_in(client)


def test_a_successful_login_resets_the_count(ana):
    fail(4)
    assert login("ana", PASSWORD)[0].status_code == 302
    assert fail(4) == [200] * 4
    response, client = login("ana", PASSWORD)
    assert response.status_code == 302 and logged_in(client)


def test_unknown_usernames_are_throttled_the_same_way(db):
    assert fail(5, username="nadie")[-1] == 429
