"""The typed errors every layer of corral raises (a leaf module: imports nothing from corral)."""
from __future__ import annotations


class CorralError(ValueError):
    """Base class of all corral errors."""


class GrammarError(CorralError):
    """A malformed or unsupported regex / grammar; ``position`` is a character offset when known."""

    def __init__(self, message: str, position: int | None = None, construct: str | None = None):
        self.position = position
        self.construct = construct
        if position is not None:
            message = f"{message} (at position {position})"
        super().__init__(message)


class SchemaError(CorralError):
    """A malformed JSON Schema (not a valid schema document)."""

    def __init__(self, message: str, pointer: str = ""):
        self.pointer = pointer
        super().__init__(f"{message} at {pointer or '#'}" if pointer is not None else message)


class UnsupportedSchemaError(CorralError):
    """Keywords the compiler cannot enforce exactly. ``issues`` lists (json_pointer, keyword, reason)."""

    def __init__(self, issues: list[tuple[str, str, str]]):
        self.issues = list(issues)
        lines = [f"{ptr or '#'}: {kw}: {why}" for ptr, kw, why in self.issues]
        super().__init__("unsupported schema keywords:\n  " + "\n  ".join(lines))


class CompileBudgetError(CorralError):
    """A compilation that would exceed its state or time budget. ``pointer``: the JSON pointer of
    the schema location being compiled when it ran out (JSON Schema front-end; None elsewhere)."""

    def __init__(self, message: str, pointer: str | None = None):
        self.reason = message
        self.pointer = pointer
        super().__init__(message if pointer is None else f"{pointer or '#'}: {message}")

    def located(self, pointer: str) -> "CompileBudgetError":
        """This error, naming ``pointer`` unless it already names a (deeper) location."""
        return self if self.pointer is not None else CompileBudgetError(self.reason, pointer)
