"""A merchant's staff: owners invite people by email with a role, change their role, switch their access off.

An invitation creates the user (no password yet) and its membership, and emails a link to choose a password
(Django's password-reset token: single use, expires after PASSWORD_RESET_TIMEOUT). A merchant always keeps one
active owner, so nobody can lock the merchant out of its own back office.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from infra.errors import Conflict, InvalidInput
from infra.events import record_event
from infra.queues import after_commit
from infra.roles import SUMMARY, Role
from tickets.models import Merchant, MerchantMembership


def _clean_email(email: str) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput("Escribe un correo válido.", details={"email": ["Correo inválido."]}) from None
    return email


@transaction.atomic
def staff_invite(*, merchant: Merchant, email: str, role: str, name: str = "", actor: str = "") -> MerchantMembership:
    """Create the user and its membership, and email the set-password link after commit."""
    email = _clean_email(email)
    if role not in Role.values:
        raise InvalidInput("Elige un rol.", details={"role": ["Rol desconocido."]})
    user_model = get_user_model()
    if user_model.objects.filter(Q(username__iexact=email) | Q(email__iexact=email)).exists():
        raise Conflict("Ya existe un usuario con ese correo.", code="staff_exists", details={"email": [email]})
    user = user_model(username=email, email=email, first_name=name.strip()[:150], is_staff=True)
    user.set_unusable_password()
    user.save()
    membership = MerchantMembership.objects.create(user=user, merchant=merchant, role=role)
    record_event(merchant_id=merchant.pk, entity="staff", object_id=membership.pk, from_status="", to_status=role,
                 actor=actor, reason=f"{email} invitado como {Role(role).label.lower()}")
    after_commit(staff_invitation_send, membership_id=membership.pk)
    return membership


def set_password_url(user) -> str:
    path = reverse("password_reset_confirm", kwargs={"uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
                                                     "token": default_token_generator.make_token(user)})
    return f"{settings.PUBLIC_BASE_URL}{path}"


def staff_invitation_send(*, membership_id: int) -> int:
    """The invitation email (also "reenviar invitación"): a fresh set-password link."""
    membership = MerchantMembership.objects.select_related("user", "merchant").get(pk=membership_id)
    user, merchant = membership.user, membership.merchant
    context = {"user": user, "merchant": merchant, "role": membership.get_role_display(),
               "summary": SUMMARY[membership.role], "url": set_password_url(user),
               "login_url": f"{settings.PUBLIC_BASE_URL}{reverse('admin:index')}",
               "days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400)}
    return send_mail(f"Te invitaron a la administración de {merchant.legal_name}",
                     render_to_string("email/staff_invite.txt", context), None, [user.email], fail_silently=False)


@transaction.atomic
def staff_update(*, membership: MerchantMembership, role: str, is_active: bool, actor: str = "") -> None:
    """Change a person's role or access; refused when it would leave the merchant without an active owner."""
    if role not in Role.values:
        raise InvalidInput("Elige un rol.", details={"role": ["Rol desconocido."]})
    # Locked in a fixed order, so two owners demoting each other at once cannot both succeed.
    owners = list(MerchantMembership.objects.select_for_update().filter(
        merchant_id=membership.merchant_id, role=Role.OWNER, user__is_active=True).order_by("pk")
        .values_list("pk", flat=True))
    stays_owner = role == Role.OWNER and is_active
    if membership.pk in owners and not stays_owner and len(owners) == 1:
        raise Conflict("El comercio necesita al menos un dueño con acceso: nombra a otro dueño antes.",
                       code="last_owner")
    before = MerchantMembership.objects.select_related("user").get(pk=membership.pk)
    if before.role != role:
        MerchantMembership.objects.filter(pk=membership.pk).update(role=role)
        record_event(merchant_id=membership.merchant_id, entity="staff", object_id=membership.pk,
                     from_status=before.role, to_status=role, actor=actor,
                     reason=f"{before.user.email or before.user.username}: rol {Role(role).label.lower()}")
    if before.user.is_active != is_active:
        type(before.user).objects.filter(pk=before.user.pk).update(is_active=is_active)
        record_event(merchant_id=membership.merchant_id, entity="staff", object_id=membership.pk,
                     from_status="active" if before.user.is_active else "inactive",
                     to_status="active" if is_active else "inactive", actor=actor,
                     reason=f"{before.user.email or before.user.username}: acceso "
                     f"{'activado' if is_active else 'desactivado'}")
