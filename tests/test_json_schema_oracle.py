"""Independent acceptance oracles for JSON Schema grammars (imported by the other test_json_schema* files).

``LarkOracle``: lark's Earley parser (POSIX leftmost-longest terminal matching) with scanless (dynamic_complete) lexing, the same language
semantics as corral's matcher, over a Lark export of the grammar. The export escapes ASCII regex
metacharacters itself because lark decodes ``\\uXXXX``/``\\xHH`` escapes before compiling a regex.
``EngineOracle``: corral's own matcher, once ``corral.compile_grammar`` exists.
"""
from __future__ import annotations

import re

import lark
import regex

from corral.grammars import ir
from corral.grammars import regex_ast as rx


def _cp(cp: int) -> str:
    if cp < 0x80:
        c = chr(cp)
        if c.isalnum():
            return c
        if 0x20 <= cp < 0x7F:
            return "\\" + c
        return "\\x%02x" % cp  # lark turns this into the raw control character: not a metacharacter
    return "\\U%08x" % cp


def _py(node) -> str:
    if isinstance(node, rx.Chars):
        rs = node.ranges
        if len(rs) == 1 and rs[0][0] == rs[0][1]:
            return _cp(rs[0][0])
        return "[" + "".join(_cp(a) if a == b else f"{_cp(a)}-{_cp(b)}" for a, b in rs) + "]"
    if isinstance(node, rx.Seq):
        return "".join(f"(?:{_py(i)})" for i in node.items)
    if isinstance(node, rx.Alt):
        if not node.items:
            return "(?!x)x"
        return "(?:" + "|".join(_py(i) for i in node.items) + ")"
    if isinstance(node, rx.Repeat):
        hi = "" if node.max is None else str(node.max)
        return f"(?:{_py(node.item)}){{{node.min},{hi}}}"
    if isinstance(node, rx.Automaton):  # exported through its regex (state elimination)
        return _py(node.as_regex())
    raise TypeError(node)


def lark_text(grammar: ir.Grammar) -> str:
    """The grammar in Lark. A terminal that is a whole automaton becomes right-linear rules over
    one-class terminals (its regex by state elimination can be exponentially long)."""
    tname = {t: f"T{i}" for i, t in enumerate(sorted(grammar.terminals))}
    nname = {n: f"r{i}" for i, n in enumerate(sorted(grammar.rules))}
    lines = [f"start: {nname[grammar.start]}"]
    nullable = set()
    automaton_start: dict = {}
    class_terminals: dict = {}
    for t, regex in grammar.terminals.items():
        if isinstance(regex, rx.Automaton):
            live = regex.live_states()
            prefix = f"a{tname[t].lower()}s"
            automaton_start[t] = f"{prefix}0"
            for q, row in enumerate(regex.trans):
                if not live[q]:
                    continue
                alts = [""] if regex.accepting[q] else []
                for c, target in enumerate(row):
                    if target >= 0 and live[target]:
                        cls = class_terminals.setdefault(regex.classes[c], f"C{len(class_terminals)}")
                        alts.append(f"{cls} {prefix}{target}")
                lines.append(f"{prefix}{q}: " + (" | ".join(alts) if alts else "C_NONE"))
            continue
        if rx.min_length(regex) == 0:
            nullable.add(t)
        lines.append(f"{tname[t]}: /{_py(regex)}/s")
    for ranges, name in class_terminals.items():
        lines.append(f"{name}: /{_py(rx.Chars(tuple(ranges)))}/s")
    lines.append("C_NONE: /(?!x)x/")

    def sym(s):
        if s in automaton_start:
            return automaton_start[s]
        if s in grammar.terminals:
            return f"{tname[s]}?" if s in nullable else tname[s]
        return nname[s]

    for n, alts in grammar.rules.items():
        lines.append(f"{nname[n]}: " + " | ".join(" ".join(sym(s) for s in a) if a else "" for a in alts))
    return "\n".join(lines) + "\n"


class LarkOracle:
    def __init__(self, grammar: ir.Grammar):
        # POSIX (leftmost-longest) matching: lark's dynamic_complete lexer only tries prefixes of the
        # first match, so a terminal like 0|0\.[0-9]+ would never yield "0.5" under Python's rules
        self.parser = lark.Lark(lark_text(grammar), parser="earley", lexer="dynamic_complete",
                                regex=True, g_regex_flags=regex.POSIX)

    def accepts(self, text: str) -> bool:
        try:
            self.parser.parse(text)
            return True
        except lark.exceptions.LarkError:
            return False


def test_oracle_escapes_metacharacters():
    g = ir.Grammar({"T": rx.literal("[+]\\\"\n")}, {"s": (("T",),)}, "s")
    o = LarkOracle(g)
    assert o.accepts("[+]\\\"\n")
    assert not o.accepts("[+]\\\"")
