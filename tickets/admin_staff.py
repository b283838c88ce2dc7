"""The merchant's team in the back office: owners invite people by email with a role, change roles, switch access.

A proxy of the membership with a merchant-scoped admin; the merchant and the user are never form fields for staff,
so nobody moves a person (or themselves) to another merchant.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils.html import format_html_join

from infra.admin_scope import MerchantScopedAdmin, user_merchant_id
from infra.errors import DomainError
from infra.roles import SUMMARY, Cap, Role
from tickets.models import Merchant, MerchantMembership, StaffMember
from tickets.staff import staff_invitation_send, staff_invite, staff_update

ROLE_HELP = format_html_join("", "<br><strong>{}</strong>: {}", ((Role(r).label, s) for r, s in SUMMARY.items()))


class StaffInviteForm(forms.ModelForm):
    email = forms.EmailField(label="Correo", help_text="Le enviaremos una liga para elegir su contraseña.")
    name = forms.CharField(label="Nombre", max_length=150, required=False)
    role = forms.ChoiceField(label="Rol", choices=Role.choices, initial=Role.CASHIER, help_text=ROLE_HELP)

    class Meta:
        model = StaffMember
        fields = ["merchant", "role"]

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if get_user_model().objects.filter(Q(username__iexact=email) | Q(email__iexact=email)).exists():
            raise forms.ValidationError("Ya existe un usuario con ese correo.")
        return email


class StaffChangeForm(forms.ModelForm):
    role = forms.ChoiceField(label="Rol", choices=Role.choices, help_text=ROLE_HELP)
    is_active = forms.BooleanField(label="Acceso activo", required=False,
                                   help_text="Sin acceso, la persona no puede entrar; su historial se conserva.")

    class Meta:
        model = StaffMember
        fields = ["role"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["is_active"].initial = self.instance.user.is_active

    def clean(self):
        data = super().clean()
        member = self.instance
        stays_owner = data.get("role") == Role.OWNER and data.get("is_active")
        if member.role == Role.OWNER and member.user.is_active and not stays_owner:
            owners = MerchantMembership.objects.filter(merchant_id=member.merchant_id, role=Role.OWNER,
                                                       user__is_active=True).count()
            if owners == 1:
                raise forms.ValidationError("El comercio necesita al menos un dueño con acceso: nombra a otro dueño "
                                            "antes.")
        return data


@admin.register(StaffMember)
class StaffMemberAdmin(MerchantScopedAdmin):
    edit_capability = Cap.STAFF
    list_display = ["email", "name", "role", "active", "last_login"]
    list_filter = ["role"]
    search_fields = ["user__email", "user__first_name", "user__last_name"]
    list_select_related = ["user"]
    actions = ["resend_invitation"]

    @admin.display(description="correo", ordering="user__email")
    def email(self, obj):
        return obj.user.email or obj.user.username

    @admin.display(description="nombre", ordering="user__first_name")
    def name(self, obj):
        return obj.user.get_full_name() or "—"

    @admin.display(description="acceso activo", boolean=True, ordering="user__is_active")
    def active(self, obj):
        return obj.user.is_active

    @admin.display(description="último acceso", ordering="user__last_login")
    def last_login(self, obj):
        return obj.user.last_login

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = StaffChangeForm if obj else StaffInviteForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is not None:
            return ["role", "is_active"]
        fields = ["email", "name", "role"]
        return ["merchant", *fields] if request.user.is_superuser else fields

    def has_delete_permission(self, request, obj=None):
        return False  # switch access off instead: who did what stays readable

    def save_model(self, request, obj, form, change):
        actor = request.user.get_username()
        data = form.cleaned_data
        if change:
            staff_update(membership=obj, role=data["role"], is_active=data["is_active"], actor=actor)
            return
        merchant_id = data["merchant"].pk if request.user.is_superuser else user_merchant_id(request.user)
        membership = staff_invite(merchant=Merchant.objects.get(pk=merchant_id), email=data["email"],
                                  name=data["name"], role=data["role"], actor=actor)
        obj.pk, obj.user_id, obj.merchant_id, obj.role = (membership.pk, membership.user_id, membership.merchant_id,
                                                          membership.role)
        messages.info(request, f"Enviamos a {data['email']} una liga para elegir su contraseña.")

    def save_related(self, request, form, formsets, change):
        pass  # nothing else to save: the service wrote the rows

    @admin.action(description="Reenviar la invitación (nueva liga para elegir contraseña)", permissions=["staff"])
    def resend_invitation(self, request, queryset):
        sent = 0
        for member in queryset.select_related("user"):
            try:
                sent += staff_invitation_send(membership_id=member.pk)
            except DomainError as exc:
                self.message_user(request, f"{member.user.email}: {exc.message}", messages.WARNING)
        self.message_user(request, f"{sent} invitación(es) enviada(s).", messages.SUCCESS)
