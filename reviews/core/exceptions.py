"""Domain errors: raised by model methods and domain functions, shown by views and commands."""


class DomainError(Exception):
    """A rule of the review desk was broken; the message is meant for the person who acted."""


class ImmutableError(DomainError):
    """Someone tried to change a record that is immutable once written."""


class RubricError(DomainError):
    """A rubric definition does not follow FORMATS.md section 2."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors))


class ImportFailed(DomainError):
    """A pool import found errors and wrote nothing."""

    def __init__(self, report):
        self.report = report
        super().__init__(f"{len(report.errors)} error(s); nothing was written")


class EscalationError(DomainError):
    """An escalation cannot do what was asked; the message says why."""


class IllegalTransition(EscalationError):
    """The state machine does not allow this move from the escalation's current status."""


class ClaimConflict(EscalationError):
    """Another lead holds the escalation."""
