"""The receptor's fiscal data on every path that invoices a person: one cleaning, one check, one set of errors.

The portal's form (``receptor_review``), the POS API and ``invoice_issue``/``late_request_issue``
(``receptor_normalized`` then ``receptor_check``) all come here; the rules themselves are pure and live in
``invoicing/cfdi/receptor.py``, where the engine reads them too. Emails are not CFDI data, so their rule is
here. A bad receptor is refused at the request (400 ``invalid_receptor``), never later at stamping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from invoicing.cfdi.errors import ERROR, WARNING, ValidationIssue
from invoicing.cfdi.receptor import CleanReceptor, receptor_clean, receptor_issues
from invoicing.errors import InvoicingError

MAX_EMAILS = 5
# Bounds on what a form or a request may carry before cleaning (a name may lose its "S.A. DE C.V."); the
# rules' own limits apply after cleaning.
INPUT_MAX_LENGTH = {"rfc": 20, "name": 400, "tax_regime": 10, "postal_code": 10, "cfdi_use": 10, "email": 254,
                    "foreign_country": 10, "foreign_tax_id": 60}


@dataclass(frozen=True)
class ReceptorData:
    rfc: str
    name: str
    tax_regime: str
    postal_code: str
    cfdi_use: str
    emails: tuple[str, ...] = field(default_factory=tuple)
    # A resident abroad (RFC XEXX010101000): c_Pais of their fiscal residence and their tax id there.
    foreign_country: str = ""
    foreign_tax_id: str = ""


@dataclass(frozen=True)
class ReceptorReview:
    receptor: ReceptorData  # cleaned
    errors: tuple[ValidationIssue, ...]
    warnings: tuple[ValidationIssue, ...]
    name_removed: str = ""  # the régimen de capital taken off the name

    def error(self) -> InvoicingError:
        return receptor_error(self.errors)


def _clean(receptor: ReceptorData) -> tuple[CleanReceptor, tuple[str, ...]]:
    clean = receptor_clean(rfc=receptor.rfc, name=receptor.name, tax_regime=receptor.tax_regime,
                           postal_code=receptor.postal_code, cfdi_use=receptor.cfdi_use,
                           foreign_country=receptor.foreign_country, foreign_tax_id=receptor.foreign_tax_id)
    emails = tuple(dict.fromkeys(e.strip().lower() for e in receptor.emails or () if e and e.strip()))
    return clean, emails


def receptor_review(receptor: ReceptorData) -> ReceptorReview:
    """Clean ``receptor`` and say everything wrong with it (errors) and worth telling (warnings). Never raises."""
    clean, emails = _clean(receptor)
    issues = receptor_issues(rfc=clean.rfc, name=clean.name, tax_regime=clean.tax_regime,
                             postal_code=clean.postal_code, cfdi_use=clean.cfdi_use, name_removed=clean.name_removed,
                             foreign_country=clean.foreign_country, foreign_tax_id=clean.foreign_tax_id)
    issues += _email_issues(emails)
    cleaned = _data(clean, emails)
    return ReceptorReview(cleaned, tuple(i for i in issues if i.severity == ERROR),
                          tuple(i for i in issues if i.severity == WARNING), clean.name_removed)


def receptor_normalized(receptor: ReceptorData) -> ReceptorData:
    """The receptor as it is stored and stamped (cleaning only; idempotent)."""
    clean, emails = _clean(receptor)
    return _data(clean, emails)


def _data(clean: CleanReceptor, emails: tuple[str, ...]) -> ReceptorData:
    return ReceptorData(rfc=clean.rfc, name=clean.name, tax_regime=clean.tax_regime, postal_code=clean.postal_code,
                        cfdi_use=clean.cfdi_use, emails=emails, foreign_country=clean.foreign_country,
                        foreign_tax_id=clean.foreign_tax_id)


def receptor_check(receptor: ReceptorData) -> tuple[ValidationIssue, ...]:
    """Refuse a receptor that cannot make a valid CFDI (``invalid_receptor``, 400); its warnings otherwise.

    Raw or already normalised data give the same answer: cleaning is idempotent.
    """
    review = receptor_review(receptor)
    if review.errors:
        raise review.error()
    return review.warnings


def receptor_error(errors) -> InvoicingError:
    """``{"code": "invalid_receptor", "message": <the first problem>, "details": {<field>: [messages],
    "problems": [{"field", "code", "message"}]}}``: the same codes and messages the portal's form shows."""
    details: dict = {}
    for issue in errors:
        details.setdefault(issue.path, []).append(issue.message)
    details["problems"] = issues_out(errors)
    return InvoicingError("invalid_receptor", errors[0].message, details, status=400)


def issues_out(issues) -> list[dict]:
    return [{"field": i.path, "code": i.code, "message": i.message} for i in issues]


def _email_issues(emails: tuple[str, ...]) -> list[ValidationIssue]:
    issues = []
    if len(emails) > MAX_EMAILS:
        issues.append(ValidationIssue("CORREOS_MAXIMO", "emails", f"Escribe hasta {MAX_EMAILS} correos."))
    for email in emails:
        try:
            if len(email) > INPUT_MAX_LENGTH["email"]:
                raise ValidationError("too long")
            validate_email(email)
        except ValidationError:
            shown = email if len(email) <= 80 else email[:80] + "…"
            issues.append(ValidationIssue("CORREO_INVALIDO", "emails",
                                          f"«{shown}» no es un correo válido; revisa que esté bien escrito."))
    return issues
