"""Independent oracles for engine tests: prefix-viability by `regex`'s partial matching and by
lark's own Earley parser on a prefix-closed grammar; random members of a grammar's language."""
from __future__ import annotations

import re

import lark
import regex

from corral.grammars import regex_ast as rx
from corral.grammars.ir import Grammar, to_lark
from corral.grammars.sampling import sample_grammar, sample_regex  # noqa: F401 (re-exported for tests)


# ---------------------------------------------------------------------------------------------
# Prefix closure (used to ask lark "is this text a prefix of some sentence?")
def prefix_regex(node: rx.Regex) -> rx.Regex:
    """A regex for the set of prefixes of L(node) (empty when L(node) is empty)."""
    if rx.min_length(node) >= (1 << 30):
        return rx.NOTHING
    if isinstance(node, rx.Chars):
        return rx.optional(node)
    if isinstance(node, rx.Seq):
        alts = []
        for i, item in enumerate(node.items):
            alts.append(rx.seq(*node.items[:i], prefix_regex(item)))
        return rx.alt(*alts) if alts else rx.EMPTY
    if isinstance(node, rx.Alt):
        return rx.alt(*(prefix_regex(i) for i in node.items))
    if isinstance(node, rx.Repeat):
        if node.max == 0:
            return rx.EMPTY
        hi = None if node.max is None else node.max - 1
        return rx.seq(rx.repeat(node.item, 0, hi), prefix_regex(node.item))
    raise TypeError(node)


def prefix_grammar(g: Grammar) -> Grammar:
    """A grammar whose language is the set of prefixes of L(g) (g's nonterminals all productive)."""
    ign = [g.terminals[t] for t in g.ignore]
    ign_prefix = rx.alt(*(prefix_regex(r) for r in ign)) if ign else None
    terminals = dict(g.terminals)
    rules: dict[str, list[tuple[str, ...]]] = {k: list(v) for k, v in g.rules.items()}
    for t, r in g.terminals.items():
        p = prefix_regex(r)
        terminals[f"{t}__P"] = rx.alt(p, ign_prefix) if ign_prefix is not None else p
    for a, alts in g.rules.items():
        out = []
        for alt in alts:
            if not alt:
                out.append(())
            for i, sym in enumerate(alt):
                cut = f"{sym}__P" if sym in g.terminals else f"{sym}__NP"
                out.append(tuple(alt[:i]) + (cut,))
        rules[f"{a}__NP"] = out
    start_alts = [(f"{g.start}__NP",)]
    if ign_prefix is not None:
        terminals["IGN__TAIL"] = ign_prefix
        start_alts.append((g.start, "IGN__TAIL"))
    rules["PREFIX__START"] = start_alts
    return Grammar(terminals=terminals, rules={k: tuple(v) for k, v in rules.items()},
                   start="PREFIX__START", ignore=g.ignore)


class LarkPrefixOracle:
    """is_prefix(text) / is_member(text) by lark's Earley parser (dynamic_complete lexer)."""

    def __init__(self, g: Grammar):
        self.member = self._lark(g)
        self.prefix = self._lark(prefix_grammar(g))
        self._memo: dict[str, bool] = {}

    @staticmethod
    def _lark(g: Grammar):
        # dynamic_complete tries every shorter end of a terminal's match, so the match itself must be
        # the longest one: POSIX leftmost-longest matching of the `regex` package, flag (?p).
        text = to_lark(g).replace(": /", ": /(?p)")
        return lark.Lark(text, parser="earley", lexer="dynamic_complete", regex=True)

    @staticmethod
    def _parses(parser, text: str) -> bool:
        try:
            parser.parse(text)
            return True
        except lark.exceptions.LarkError:
            return False

    def is_member(self, text: str) -> bool:
        return self._parses(self.member, text)

    def is_prefix(self, text: str) -> bool:
        hit = self._memo.get(text)
        if hit is None:
            hit = self._parses(self.prefix, text)
            self._memo[text] = hit
        return hit


class RegexPrefixOracle:
    """is_prefix(text) / is_member(text) by the `regex` package's partial matching."""

    def __init__(self, pattern: str, flags: int = 0):
        self.pattern = regex.compile(pattern, flags)

    def is_member(self, text: str) -> bool:
        return self.pattern.fullmatch(text) is not None

    def is_prefix(self, text: str) -> bool:
        return self.pattern.fullmatch(text, partial=True) is not None


def utf8_complete(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


ASCII_ONLY = re.compile(r"[\x00-\x7f]*")
