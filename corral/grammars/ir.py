"""The Grammar IR: one representation that every front-end targets.

A grammar is a context-free grammar whose terminals are regexes (``regex_ast`` nodes over code
points). Rules map a nonterminal name to alternatives; an alternative is a tuple of symbol names;
a name is a terminal when it is a key of ``terminals``, else a nonterminal. ``ignore`` names
terminals that may appear between any two terminals and at both ends (Lark's ``%ignore``).

Semantics (what the matcher enforces): a text is in the language when it splits into lexemes
w1..wn, each wi in its terminal's regex, whose terminal sequence (with ignored terminals removed)
derives from ``start``. Lexing is non-deterministic: no longest-match rule, exactly as if every
terminal were inlined as a sub-grammar.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

from corral.errors import CompileBudgetError, GrammarError
from corral.grammars import regex_ast as rx


FAMILY_SEPARATOR = "@"


class RuleFamily:
    """Nonterminals defined by a function instead of listed rules: member ``f"{family}@{key}"``
    has the alternatives ``alternatives(key)``, whose symbols are terminals, ordinary nonterminals
    or members of any family. For languages whose rules are exponential but of which a sentence
    visits few (JSON objects with many required keys in any order: one member per set of keys
    seen). The parser expands members as it predicts them; ``Grammar.expanded`` lists them all.

    Contract: a member is productive iff every symbol of ``required_symbols`` is; a member is
    nullable iff it has the empty alternative (every other alternative starts with a non-nullable
    symbol). Subclasses are immutable and picklable."""

    def alternatives(self, key: str) -> tuple[tuple[str, ...], ...]:
        raise NotImplementedError

    def nullable(self, key: str) -> bool:
        """Whether member ``key`` has the empty alternative. The parser asks it of every member it
        names, but expands only those it predicts: families override it with a check that does not
        build the alternatives (a key position of an object with 60 keys names 60 members)."""
        return () in self.alternatives(key)

    def describe(self) -> str:
        """A stable text form of the whole family (part of the grammar's fingerprint)."""
        raise NotImplementedError

    def required_symbols(self) -> tuple[str, ...]:
        """Symbols every complete derivation of every member uses: a member is productive iff all
        of these are (the parser prunes members that cannot complete, as it prunes listed rules)."""
        return ()


@dataclass(frozen=True)
class Grammar:
    terminals: Mapping[str, rx.Regex]
    rules: Mapping[str, tuple[tuple[str, ...], ...]]
    start: str
    ignore: tuple[str, ...] = ()
    families: Mapping[str, RuleFamily] = field(default_factory=dict)
    # A constraint no context-free rule can state: JSON arrays whose items are pairwise distinct.
    # Key: the terminal opening such an array (used for nothing else); value: the nonterminals of
    # that array's own structure (not its item values). Items are JSON values compared by JSON
    # equality; the Matcher enforces it (corral.masks.unique) by removing the parses of the array
    # when an item repeats. ``unique_integer_items``: those arrays whose numeric items are all
    # integers, with their inclusive bounds (None: unbounded) and minItems: (lo, hi, min_items);
    # then "0…", "-0…", "n." and prefixes near a bound already narrow the value (masks/unique.py).
    # ``unique_string_domains``: those arrays whose items are a finite set of strings, with that
    # set (sorted) and minItems (the Matcher keeps enough unused values within reach).
    # ``unique_searched``: arrays whose item prefixes may have only used values left (closed item
    # languages), with minItems: the Matcher searches each prefix's completions for an unused value.
    unique_arrays: Mapping[str, frozenset] = field(default_factory=dict)
    unique_integer_items: Mapping[str, tuple] = field(default_factory=dict)
    unique_string_domains: Mapping[str, tuple] = field(default_factory=dict)
    unique_searched: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.start not in self.rules:
            raise GrammarError(f"start symbol {self.start!r} has no rule")
        for name in self.rules:
            if name in self.terminals:
                raise GrammarError(f"{name!r} is both a terminal and a nonterminal")
        for name, alts in self.rules.items():
            for alt in alts:
                for sym in alt:
                    if sym not in self.terminals and sym not in self.rules and self.family_of(sym) is None:
                        raise GrammarError(f"rule {name!r} uses undefined symbol {sym!r}")
        for t in self.ignore:
            if t not in self.terminals:
                raise GrammarError(f"ignored terminal {t!r} is not defined")
        for t, nts in self.unique_arrays.items():
            if t not in self.terminals or any(n not in self.rules for n in nts):
                raise GrammarError(f"unique array {t!r} names undefined symbols")
        if not set(self.unique_integer_items) <= set(self.unique_arrays) or \
                not set(self.unique_string_domains) <= set(self.unique_arrays) or \
                not set(self.unique_searched) <= set(self.unique_arrays):
            raise GrammarError("unique_integer_items / unique_string_domains name a terminal that opens no unique array")

    def is_terminal(self, name: str) -> bool:
        return name in self.terminals

    def family_of(self, name: str) -> tuple[RuleFamily, str] | None:
        """(family, key) when ``name`` is a family member."""
        fam, sep, key = name.partition(FAMILY_SEPARATOR)
        if sep and fam in self.families:
            return self.families[fam], key
        return None

    def alternatives(self, name: str) -> tuple[tuple[str, ...], ...]:
        """The alternatives of a listed nonterminal or of a family member."""
        alts = self.rules.get(name)
        if alts is not None:
            return alts
        fam = self.family_of(name)
        if fam is None:
            raise GrammarError(f"undefined nonterminal {name!r}")
        return fam[0].alternatives(fam[1])

    def expanded(self, max_rules: int = 100_000) -> "Grammar":
        """The same grammar with every reachable family member listed as a rule (no families).
        Exponential for the grammars families exist for: for tests, exports and small cases."""
        if not self.families:
            return self
        rules = {k: tuple(v) for k, v in self.rules.items()}
        todo = [s for alts in rules.values() for a in alts for s in a if self.family_of(s) is not None]
        while todo:
            name = todo.pop()
            if name in rules:
                continue
            alts = self.alternatives(name)
            rules[name] = alts
            if len(rules) > max_rules:
                raise CompileBudgetError(f"expanding the grammar's rule families exceeds {max_rules} rules")
            todo.extend(s for a in alts for s in a if self.family_of(s) is not None and s not in rules)
        return Grammar(terminals=self.terminals, rules=rules, start=self.start, ignore=self.ignore,
                       unique_arrays=self.unique_arrays, unique_integer_items=self.unique_integer_items,
                       unique_string_domains=self.unique_string_domains, unique_searched=self.unique_searched)

    def fingerprint(self) -> str:
        """A stable text form, used as a cache key."""
        parts = [f"start={self.start}", f"ignore={','.join(self.ignore)}"]
        for k in sorted(self.terminals):
            parts.append(f"T {k} = {self.terminals[k]!r}")
        for k in sorted(self.rules):
            parts.append(f"R {k} = {self.rules[k]!r}")
        for k in sorted(self.families):
            parts.append(f"F {k} = {self.families[k].describe()}")
        for k in sorted(self.unique_arrays):
            parts.append(f"U {k} = {sorted(self.unique_arrays[k])!r}")
        for k in sorted(self.unique_integer_items):
            parts.append(f"UI {k} = {self.unique_integer_items[k]!r}")
        for k in sorted(self.unique_string_domains):
            parts.append(f"UD {k} = {self.unique_string_domains[k]!r}")
        for k in sorted(self.unique_searched):
            parts.append(f"US {k} = {self.unique_searched[k]!r}")
        return "\n".join(parts)


@dataclass
class GrammarBuilder:
    """Mutable helper for front-ends: fresh names, terminal dedup by structure, then ``build()``."""

    terminals: dict[str, rx.Regex] = field(default_factory=dict)
    rules: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    ignore: list[str] = field(default_factory=list)
    families: dict[str, RuleFamily] = field(default_factory=dict)
    unique_arrays: dict[str, frozenset] = field(default_factory=dict)
    unique_integer_items: dict[str, tuple] = field(default_factory=dict)
    unique_string_domains: dict[str, tuple] = field(default_factory=dict)
    unique_searched: dict[str, int] = field(default_factory=dict)
    _by_regex: dict[rx.Regex, str] = field(default_factory=dict)
    _alternative_sets: dict[str, set] = field(default_factory=dict)
    _counter: int = 0
    n_alternatives: int = 0  # over all rules (front-ends check their budgets against it)

    def fresh(self, prefix: str) -> str:
        self._counter += 1
        base = re.sub(r"[^A-Za-z0-9_]", "_", prefix) or "n"
        return f"{base}__{self._counter}"

    def terminal(self, regex: rx.Regex, name: str | None = None) -> str:
        """The name of a terminal for ``regex`` (reused when the same regex was added before)."""
        if name is None:
            known = self._by_regex.get(regex)
            if known is not None:
                return known
        name = name or self.fresh("T")
        self.terminals[name] = regex
        self._by_regex.setdefault(regex, name)
        return name

    def rule(self, name: str, alternatives: list[tuple[str, ...]] | tuple[tuple[str, ...], ...]) -> str:
        alts = self.rules.setdefault(name, [])
        seen = self._alternative_sets.setdefault(name, set())
        for a in alternatives:
            a = tuple(a)
            if a not in seen:
                seen.add(a)
                alts.append(a)
                self.n_alternatives += 1
        return name

    def build(self, start: str) -> Grammar:
        return Grammar(
            terminals=dict(self.terminals),
            rules={k: tuple(v) for k, v in self.rules.items()},
            start=start,
            ignore=tuple(self.ignore),
            families=dict(self.families),
            unique_arrays=dict(self.unique_arrays),
            unique_integer_items=dict(self.unique_integer_items),
            unique_string_domains=dict(self.unique_string_domains),
            unique_searched=dict(self.unique_searched),
        )


def to_lark(grammar: Grammar) -> str:
    """Export as Lark text (terminals as Python regexes) for lark's own parser, used as a test oracle.

    Use with ``Lark(text, parser="earley", lexer="dynamic_complete")``, whose scanless semantics match
    corral's non-deterministic lexing. Empty-matching terminals are inlined as optional rules.
    Rule families are expanded (``Grammar.expanded``).
    """
    grammar = grammar.expanded()
    tname = {t: f"T{i}" for i, t in enumerate(sorted(grammar.terminals))}
    nname = {n: f"r{i}" for i, n in enumerate(sorted(grammar.rules))}
    lines = [f"start: {nname[grammar.start]}"]
    nullable_terms: set[str] = set()
    for t, regex in grammar.terminals.items():
        if rx.min_length(regex) == 0:  # lark rejects zero-width terminals: emit L-{""} and use T?
            nullable_terms.add(t)
            regex = rx.non_empty(regex)
        pat = rx.to_python_regex(regex)
        lines.append(f"{tname[t]}: /{pat.replace('/', chr(92) + '/')}/s")

    def sym(s: str) -> str:
        if s in grammar.terminals:
            return f"{tname[s]}?" if s in nullable_terms else tname[s]
        return nname[s]

    for n, alts in grammar.rules.items():
        body = " | ".join(" ".join(sym(s) for s in a) if a else "" for a in alts) if alts else ""
        lines.append(f"{nname[n]}: {body}")
    for t in grammar.ignore:
        lines.append(f"%ignore {tname[t]}")
    return "\n".join(lines) + "\n"
