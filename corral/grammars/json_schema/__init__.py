"""JSON Schema front-end: ``json_schema_to_grammar(schema, **options) -> JsonSchemaGrammar``.

The compiler lives in ``compiler.py`` (normalization + emission), with exact regex builders for
numbers (``numbers.py``), JSON strings and formats (``strings.py``), and a small code-point DFA
toolkit for intersections/complements (``cpdfa.py``). See docs/json_schema.md for the keyword
table and the exactness policy.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from corral.errors import SchemaError, UnsupportedSchemaError
from corral.grammars import ir
from corral.grammars.json_schema.compiler import Compiler, Options

__all__ = ["JsonSchemaGrammar", "json_schema_to_grammar", "Options"]


@dataclass(frozen=True)
class JsonSchemaGrammar:
    grammar: ir.Grammar
    report: list  # (json_pointer, keyword, reason) for what lenient mode ignored


def json_schema_to_grammar(schema: Any, **options) -> JsonSchemaGrammar:
    """Compile a JSON Schema (dict, bool, or JSON text) into a Grammar IR.

    Options: ``whitespace`` ("flexible" | "compact" | (item_sep, key_sep)), ``max_whitespace`` (longest
    whitespace run between tokens in flexible mode, default 64), ``lenient`` (report instead of
    raising UnsupportedSchemaError), ``strict_properties`` (missing additionalProperties means false),
    ``property_order`` ("any" | "schema"), ``format_assert`` (default True), budgets
    (``max_tracked_keys``, ``max_dnf``, ``max_rules``, ``max_array_states``, ``max_seconds``), ``retrieve`` (uri -> schema
    for remote $refs), ``default_dialect`` (when ``$schema`` is absent; default 2020-12).
    """
    if isinstance(schema, (str, bytes)):
        try:
            schema = json.loads(schema)
        except ValueError as e:
            raise SchemaError(f"schema is not valid JSON: {e}") from None
    if not isinstance(schema, (dict, bool)):
        raise SchemaError("a schema must be a JSON object or a boolean")
    unknown = set(options) - set(Options.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown json_schema_to_grammar options: {sorted(unknown)}")
    opt = Options(**options)
    if opt.property_order not in ("any", "schema"):
        raise ValueError("property_order must be 'any' or 'schema'")
    import sys
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old_limit, 8000))  # deep schemas; still bounded (RecursionError -> budget)
    try:
        c = Compiler(schema, opt)
        grammar = c.compile()
    except RecursionError:
        from corral.errors import CompileBudgetError
        raise CompileBudgetError("schema nesting exceeds the recursion budget") from None
    finally:
        sys.setrecursionlimit(old_limit)
    if c.issues and not opt.lenient:
        raise UnsupportedSchemaError(c.issues)
    return JsonSchemaGrammar(grammar, list(c.issues))
