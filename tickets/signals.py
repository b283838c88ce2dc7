"""Signals other apps listen to (tickets imports nothing from them)."""

from django.dispatch import Signal

# Sent when a ticket batch ends, done or failed: kwargs ``batch`` (a tickets.models.Batch).
batch_finished = Signal()
