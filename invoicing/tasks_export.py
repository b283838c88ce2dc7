"""django-q2 tasks of the accountant's export: an id in, one service call."""

from invoicing.services.exports import export_run, export_sweep


def run_export(export_id: int) -> str:
    return export_run(export_id=export_id)


def sweep_exports() -> int:
    """Periodic: re-queue exports whose worker died (invoicing/services/exports.py)."""
    return export_sweep()
