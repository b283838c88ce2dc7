"""Public download URLs (random codes) and id-based downloads for the admin."""

from django.urls import path  # noqa: F401

urlpatterns = []
