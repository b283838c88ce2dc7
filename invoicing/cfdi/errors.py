"""Structured problems: every one carries a SAT code when one exists, a field path and a Spanish message."""

from __future__ import annotations

from dataclasses import dataclass

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    code: str
    path: str
    message: str
    severity: str = ERROR

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "path": self.path, "message": self.message, "severity": self.severity}


class CfdiError(Exception):
    """Base of the engine's errors; ``issues`` lists what went wrong, messages in Spanish."""

    def __init__(self, issues: list[ValidationIssue]):
        self.issues = issues
        super().__init__("; ".join(i.message for i in issues))

    @property
    def code(self) -> str:
        return self.issues[0].code if self.issues else ""


class BuildError(CfdiError):
    """The input (tickets, parties) cannot make a valid CFDI."""

    def __init__(self, code: str, path: str, message: str):
        super().__init__([ValidationIssue(code, path, message)])


def errors_only(issues: list[ValidationIssue]) -> list[ValidationIssue]:
    return [i for i in issues if i.severity == ERROR]
