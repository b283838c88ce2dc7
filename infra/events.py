"""Guarded status changes: a change happens only from the expected status, with an event row beside it."""

from collections.abc import Iterable

from django.db import models, transaction

from infra.models import Event


def record_event(*, merchant_id: int, entity: str, object_id: int, from_status: str, to_status: str,
                 actor: str = "", reason: str = "", data: dict | None = None) -> Event:
    return Event.objects.create(
        merchant_id=merchant_id,
        entity=entity,
        object_id=object_id,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        reason=reason,
        data=data or {},
    )


@transaction.atomic(savepoint=False)  # no SAVEPOINT round trips when called inside the caller's transaction
def transition(obj: models.Model, *, entity: str, to: str, expected: str | Iterable[str],
               actor: str = "", reason: str = "", data: dict | None = None, where: models.Q | None = None,
               **fields) -> bool:
    """Move ``obj`` to status ``to`` if it is still in ``expected``; write the event. Returns False if it was not.

    Extra ``fields`` are updated in the same statement, so a status and its consequences land together;
    ``where`` adds conditions to the guard (e.g. the lease a worker still holds).
    """
    expected_set = {expected} if isinstance(expected, str) else set(expected)
    rows = type(obj).objects.filter(pk=obj.pk, status__in=expected_set)
    if where is not None:
        rows = rows.filter(where)
    updated = rows.update(status=to, **fields)
    if updated != 1:
        return False
    from_status = obj.status
    obj.status = to
    for name, value in fields.items():
        setattr(obj, name, value)
    record_event(merchant_id=obj.merchant_id, entity=entity, object_id=obj.pk, from_status=from_status,
                 to_status=to, actor=actor, reason=reason, data=data)
    return True
