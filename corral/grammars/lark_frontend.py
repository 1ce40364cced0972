"""Lark EBNF front-end: Lark grammar text -> Grammar IR.

Lark's own loader parses the grammar text (rules, EBNF operators, templates, ``%import common.*``,
``%ignore``) and expands it into plain rules over named terminals; this module maps those onto the
IR, with each terminal's pattern re-parsed by corral's regex front-end. Only the loader runs, not
``lark.Lark``'s parser construction: that took ~40% of a Lark grammar's compile (2-4 ms of lark's
2-4.4 ms on bench.engine's grammars; the loader alone 1.4-3.3 ms) and refused terminals that
match the empty string, which corral's parser takes (a nullable terminal). Priorities are ignored
(they rank parse trees, not the language). ``%declare``d terminals have no pattern: rejected, as
are terminal regexes whose anchors, lookarounds or word boundaries test the neighboring text.
"""
from __future__ import annotations

import re

import lark
from lark.exceptions import LarkError
from lark.load_grammar import load_grammar

from corral.errors import GrammarError
from corral.grammars import regex_ast as rx
from corral.grammars.ir import Grammar
from corral.grammars.regex_parser import parse_lexeme_regex, parse_regex


def _terminal_regex(term) -> rx.Regex:
    pattern = term.pattern
    if isinstance(pattern, lark.lexer.PatternStr):
        if "i" in pattern.flags:
            # Python's IGNORECASE (simple case folding: "ß"i matches "ẞ", never "SS"), as Lark does
            return parse_regex(re.escape(pattern.value), flavor="python", flags=re.IGNORECASE)
        return rx.literal(pattern.value)
    try:
        return parse_lexeme_regex(pattern.to_regexp(), flavor="python")
    except GrammarError as e:
        raise GrammarError(f"terminal {term.name}: {e}", construct=e.construct) from e


def lark_to_grammar(text: str, start: str = "start") -> Grammar:
    try:
        loaded, _ = load_grammar(text, "<grammar>", None, False)
        lark_terminals, lark_rules, ignore_tokens = loaded.compile([start], set())
    except LarkError as e:
        line = getattr(e, "line", None)
        column = getattr(e, "column", None)
        where = f" at line {line} column {column}" if line is not None else ""
        raise GrammarError(f"invalid Lark grammar{where}: {str(e).strip().splitlines()[0]}",
                           position=getattr(e, "pos_in_stream", None)) from e
    defined = {term.name for term in lark_terminals}
    rules: dict[str, list[tuple[str, ...]]] = {}
    for rule in lark_rules:
        alt = []
        for sym in rule.expansion:
            if sym.is_term and sym.name not in defined:
                raise GrammarError(f"terminal {sym.name} has no pattern (%declare is not supported)",
                                   construct="%declare")
            alt.append(sym.name)
        rules.setdefault(rule.origin.name, [])
        if tuple(alt) not in rules[rule.origin.name]:
            rules[rule.origin.name].append(tuple(alt))
    if start not in rules:
        raise GrammarError(f"start rule {start!r} is not defined")
    terminals: dict[str, rx.Regex] = {}
    for term in lark_terminals:
        terminals[term.name] = _terminal_regex(term)
    return Grammar(terminals=terminals, rules={k: tuple(v) for k, v in rules.items()}, start=start,
                   ignore=tuple(ignore_tokens))
