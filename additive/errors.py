"""The project's one exception family.

Every error a researcher can cause (a bad spec, a bad path, a bad query) is an
``AdxError``; the CLI prints it as ``Error: ...`` and exits with code 1, without a
traceback. Anything else is a bug.
"""

from __future__ import annotations


class AdxError(Exception):
    """Base class of every user-facing error in the project."""


class SpecError(AdxError, ValueError):
    """A trial or sweep spec is invalid. The message names the field (and file)."""


class SupportError(AdxError):
    """A support / dependence combination cannot be sampled (acceptance too low)."""


class DivergedError(AdxError):
    """Training produced a NaN or infinite loss; the sweep records status ``diverged``."""


class BudgetError(AdxError):
    """A trial ran past its time budget; the sweep records status ``failed``."""


def must(field: str, requirement: str, got: object) -> SpecError:
    """Build the project's standard message: "`field` must ..., but got ..."."""
    return SpecError(f"`{field}` must {requirement}, but got {got!r}")
