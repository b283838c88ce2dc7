"""django-q2's ``qcluster``, with the CFDI engine warmed in the parent process before it forks the workers,
and the stamping queue's slots reset (a task armed before a crash may be gone).

Workers are forked from this process, and forked again every Q_RECYCLE tasks: warmed here, they share SAT's
compiled XSLT, schema and catalogs (copy-on-write) instead of each spending a second or two compiling them on
its first document. INSTALLED_APPS lists ``invoicing`` before ``django_q`` so this command is the one found.
"""

from django_q.management.commands.qcluster import Command as QclusterCommand

from invoicing.cfdi.resources import engine_warm
from invoicing.stamp_queue import stamp_queue_restart


class Command(QclusterCommand):
    def handle(self, *args, **options):
        engine_warm()
        stamp_queue_restart()
        super().handle(*args, **options)
