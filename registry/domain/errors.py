"""Expected outcomes of a request, each with the stable code clients see in `extensions.code`."""

from __future__ import annotations

import uuid


class RegistryError(Exception):
    """Base of every expected failure; the message is safe to show to the caller."""

    code = "INTERNAL"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadUserInput(RegistryError):
    code = "BAD_USER_INPUT"


class NotFound(RegistryError):
    code = "NOT_FOUND"


class Conflict(RegistryError):
    code = "CONFLICT"


class DuplicateNationalNumber(Conflict):
    """A second file for a registered national number. Refusing it tells the caller that a file
    exists, so the refusal is audited with the existing file's id (`existing_id`, kept out of
    the details the caller sees) and costs a hit/no-hit lookup."""

    def __init__(self, existing_id: uuid.UUID | None) -> None:
        super().__init__("a subject with this national number is already registered")
        self.existing_id = existing_id


class Forbidden(RegistryError):
    code = "FORBIDDEN"


class PurposeRequired(RegistryError):
    code = "PURPOSE_REQUIRED"


class RateLimited(RegistryError):
    code = "RATE_LIMITED"
