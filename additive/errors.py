"""The project's one exception family.

Every error a researcher can cause (a bad spec, a bad path, a bad query) is an
``AdxError``; the CLI prints it as ``Error: ...`` and exits with code 1, without a
traceback. Anything else is a bug.
"""

from __future__ import annotations


class AdxError(Exception):
    """Base class of every user-facing error in the project."""


class SpecError(AdxError, ValueError):
    """A trial or sweep spec is invalid. The message names the field (and file).

    ``field`` and ``requirement`` (the "must ..., but got ..." part) are kept apart so
    the sweep layer can re-address the error to the file and key path it came from.
    """

    def __init__(self, message: str, field: str | None = None, requirement: str | None = None):
        super().__init__(message)
        self.field = field
        self.requirement = requirement


class SupportError(AdxError):
    """A support / dependence combination cannot be sampled (acceptance too low)."""


class DivergedError(AdxError):
    """Training produced a NaN or infinite loss; the sweep records status ``diverged``."""


class BudgetError(AdxError):
    """A trial ran past its time budget; the sweep records status ``failed``."""


def must(field: str, requirement: str, got: object) -> SpecError:
    """Build the project's standard message: "`field` must ..., but got ..."."""
    tail = f"must {requirement}, but got {got!r}" if got is not _NOTHING else f"must {requirement}"
    return SpecError(f"`{field}` {tail}", field=field, requirement=tail)


_NOTHING = object()
