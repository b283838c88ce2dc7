"""Throwing away what a benchmark made."""

from contextlib import contextmanager


@contextmanager
def bench_invoices_deletable():
    """A benchmark's own invoices, stamped by the sandbox PAC (never valid before SAT), are deleted after the run.

    The product refuses to delete a stamped invoice by any path (invoicing.lifecycle.refuse_deleting_legal_invoices);
    only a benchmark's clean-up lifts that, for the length of this block.
    """
    from django.db.models.signals import pre_delete

    from invoicing.lifecycle import refuse_deleting_legal_invoices
    from invoicing.models import Invoice

    pre_delete.disconnect(refuse_deleting_legal_invoices, sender=Invoice, dispatch_uid="invoice_never_deleted")
    try:
        yield
    finally:
        pre_delete.connect(refuse_deleting_legal_invoices, sender=Invoice, dispatch_uid="invoice_never_deleted")
