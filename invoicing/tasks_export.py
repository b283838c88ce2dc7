"""django-q2 tasks of the accountant's export: an id in, one service call."""


def run_export(export_id: int) -> str:
    from invoicing.services.exports import export_run

    return export_run(export_id=export_id)


def sweep_exports() -> int:
    """Periodic: re-queue exports whose worker died (invoicing/services/exports.py)."""
    from invoicing.services.exports import export_sweep

    return export_sweep()
