"""Regex strings -> ``regex_ast`` nodes, for two flavors: Python ``re`` and ECMAScript (JSON Schema).

``parse_regex`` gives the language of *full matches* (what a terminal means); ``search_regex`` gives
the language of strings that *contain* a match (what JSON Schema ``pattern`` means). Both are exact
or raise ``GrammarError(message, position, construct)``: constructs outside regular languages
(backreferences, lookaround, word boundaries, conditionals, atomic groups, possessive quantifiers)
are rejected, never approximated.

Anchors are handled exactly, not only at the ends: each sub-expression is split by which anchors
its match used (start ``^``, end ``$``), and concatenation enforces that whatever precedes a used
start anchor matched the empty string (and the mirror image for end anchors). So ``^a|b$`` under
search semantics is ``a.*|.*b``, and ``a^b`` is the empty language, as in the engines. Anchors whose
meaning depends on newlines (Python ``$`` before a final ``\\n``, MULTILINE ``^``/``$``) are
accepted where that difference cannot arise and rejected where it could.

Python-flavor case-insensitive matching is computed with ``re`` itself on the few code points whose
case matters, so it agrees with ``re.IGNORECASE`` by construction (including its special folds).
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from corral.errors import GrammarError
from corral.grammars import regex_ast as rx

__all__ = ["parse_regex", "search_regex", "FLAVORS"]

FLAVORS = ("python", "ecmascript")

_SUPPORTED_PY_FLAGS = re.IGNORECASE | re.DOTALL | re.VERBOSE | re.MULTILINE | re.ASCII | re.UNICODE
_MAX_ANCHOR_UNROLL = 64  # bounded repeats of sub-expressions containing anchors are unrolled


# --------------------------------------------------------------------------------------------
# Character class tables (computed once)
# --------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _all_code_points() -> str:
    # lone surrogates are fine in a Python str; normalize_ranges strips them afterwards
    return "".join(map(chr, range(rx.MAX_CODE_POINT + 1)))


@lru_cache(maxsize=None)
def _python_category(pattern: str) -> tuple[tuple[int, int], ...]:
    """Code point ranges matched by a one-character ``re`` pattern such as ``\\d`` (Unicode mode).

    Scans every code point with ``re`` itself, so the class is exactly ``re``'s.
    """
    text = _all_code_points()
    return rx.normalize_ranges((m.start(), m.end() - 1) for m in re.finditer(f"(?:{pattern})+", text))


_ASCII_CLASSES = {
    "d": ((0x30, 0x39),),
    "w": ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)),
    "s": ((0x09, 0x0D), (0x20, 0x20)),  # Python's ASCII \s: [ \t\n\r\f\v]
}

_ECMA_SPACE = rx.normalize_ranges(
    [(0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
     (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF)]
)
_ECMA_CLASSES = {
    "d": ((0x30, 0x39),),
    "w": ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)),
    "s": _ECMA_SPACE,
}


def _complement(ranges: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    out, prev = [], 0
    for lo, hi in ranges:
        if lo > prev:
            out.append((prev, lo - 1))
        prev = hi + 1
    if prev <= rx.MAX_CODE_POINT:
        out.append((prev, rx.MAX_CODE_POINT))
    return rx.normalize_ranges(out)


def _intersect(a, b):
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


@lru_cache(maxsize=1)
def _case_sensitive_points() -> tuple[tuple[int, int], ...]:
    """Code points whose ``re.IGNORECASE`` behavior may differ from exact matching.

    A code point outside this set is uncased and is nobody's lowercase, so under ``re.I`` it matches
    (and is matched by) exactly what it matches without the flag.
    """
    import _sre
    from re import _casefix

    points = set()
    for cp in range(rx.MAX_CODE_POINT + 1):
        if _sre.unicode_iscased(cp):
            points.add(cp)
            points.add(_sre.unicode_tolower(cp))
    for k, vs in _casefix._EXTRA_CASES.items():
        points.add(k)
        points.update(vs)
    return rx.normalize_ranges((p, p) for p in points)


@lru_cache(maxsize=1)
def _case_sensitive_text() -> tuple[str, tuple[int, ...]]:
    cps = [cp for lo, hi in _case_sensitive_points() for cp in range(lo, hi + 1)]
    return "".join(map(chr, cps)), tuple(cps)


@lru_cache(maxsize=4096)
def _python_ignorecase(atom_source: str, flags: int, base: tuple[tuple[int, int], ...]):
    """``base`` (the atom's set without IGNORECASE) corrected by ``re`` on the case-sensitive points."""
    sensitive = _case_sensitive_points()
    text, cps = _case_sensitive_text()
    compiled = re.compile(atom_source, flags)
    matched = [(cps[m.start()], cps[m.start()]) for m in compiled.finditer(text)]
    keep = _intersect(base, _complement(sensitive))
    return rx.normalize_ranges(list(keep) + matched)


@lru_cache(maxsize=None)
def _unicode_general_category(prefix: str) -> tuple[tuple[int, int], ...]:
    """Code points whose general category is ``prefix`` (e.g. "L", "Nd"). Scanned with the
    ``regex`` module's ``\\p{..}`` (C speed, recent Unicode) when installed, else ``unicodedata``."""
    try:
        import regex
    except ImportError:
        regex = None
    if regex is not None:
        found = regex.finditer(rf"\p{{{prefix}}}+", _all_code_points())
        return rx.normalize_ranges((m.start(), m.end() - 1) for m in found)
    return rx.normalize_ranges(
        (lo, hi) for cat, ranges in _general_category_table().items() if cat.startswith(prefix)
        for lo, hi in ranges)


@lru_cache(maxsize=1)
def _general_category_table() -> dict[str, list[tuple[int, int]]]:
    """Ranges of every two-letter general category, from one pass over ``unicodedata`` (cached)."""
    import numpy as np

    cats = [unicodedata.category(c) for c in _all_code_points()]
    names = sorted(set(cats))
    index = {n: i for i, n in enumerate(names)}
    code = np.fromiter((index[c] for c in cats), dtype=np.int16, count=len(cats))
    change = np.flatnonzero(np.diff(code)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change - 1, [len(code) - 1]])
    table: dict[str, list[tuple[int, int]]] = {n: [] for n in names}
    for lo, hi in zip(starts.tolist(), ends.tolist()):
        table[names[code[lo]]].append((lo, hi))
    return table


_GENERAL_CATEGORY_ALIASES = {
    "Letter": "L", "Cased_Letter": "LC", "Uppercase_Letter": "Lu", "Lowercase_Letter": "Ll",
    "Titlecase_Letter": "Lt", "Modifier_Letter": "Lm", "Other_Letter": "Lo", "Mark": "M",
    "Nonspacing_Mark": "Mn", "Spacing_Mark": "Mc", "Enclosing_Mark": "Me", "Number": "N",
    "Decimal_Number": "Nd", "Letter_Number": "Nl", "Other_Number": "No", "Punctuation": "P",
    "Connector_Punctuation": "Pc", "Dash_Punctuation": "Pd", "Open_Punctuation": "Ps",
    "Close_Punctuation": "Pe", "Initial_Punctuation": "Pi", "Final_Punctuation": "Pf",
    "Other_Punctuation": "Po", "Symbol": "S", "Math_Symbol": "Sm", "Currency_Symbol": "Sc",
    "Modifier_Symbol": "Sk", "Other_Symbol": "So", "Separator": "Z", "Space_Separator": "Zs",
    "Line_Separator": "Zl", "Paragraph_Separator": "Zp", "Other": "C", "Control": "Cc",
    "Format": "Cf", "Surrogate": "Cs", "Private_Use": "Co", "Unassigned": "Cn",
    "digit": "Nd", "punct": "P",
}
_GENERAL_CATEGORIES = {
    "L", "Lu", "Ll", "Lt", "Lm", "Lo", "M", "Mn", "Mc", "Me", "N", "Nd", "Nl", "No", "P", "Pc", "Pd",
    "Ps", "Pe", "Pi", "Pf", "Po", "S", "Sm", "Sc", "Sk", "So", "Z", "Zs", "Zl", "Zp", "C", "Cc", "Cf",
    "Cs", "Co", "Cn",
}


def _unicode_property(name: str, pos: int) -> tuple[tuple[int, int], ...]:
    value = name
    if "=" in name:
        key, value = name.split("=", 1)
        if key not in ("General_Category", "gc"):
            raise GrammarError(f"unsupported Unicode property \\p{{{name}}}", pos, "unicode property")
    value = _GENERAL_CATEGORY_ALIASES.get(value, value)
    if value == "LC":
        return rx.normalize_ranges(
            _unicode_general_category("Lu") + _unicode_general_category("Ll") + _unicode_general_category("Lt"))
    if value == "Any":
        return ((0, rx.MAX_CODE_POINT),)
    if value == "ASCII":
        return ((0, 0x7F),)
    if value not in _GENERAL_CATEGORIES:
        raise GrammarError(f"unsupported Unicode property \\p{{{name}}}", pos, "unicode property")
    return _unicode_general_category(value)


# --------------------------------------------------------------------------------------------
# Internal tree (regex AST plus anchors), built by the parser, then anchors are eliminated
# --------------------------------------------------------------------------------------------
# ("lit", rx.Regex) | ("seq", [nodes]) | ("alt", [nodes]) | ("rep", node, min, max, pos)
# | ("zw", ((start_constraint, end_constraint), ...), pos): a zero-width item (anchor, one-character
# lookaround, word boundary) as alternative pairs of constraints on its neighbors (see below).

_HEX = "0123456789abcdefABCDEF"
_OCT = "01234567"


class _Parser:
    def __init__(self, pattern: str, flavor: str, flags: int, lookahead_tree: bool = False):
        self.p = pattern
        self.n = len(pattern)
        self.i = 0
        self.flavor = flavor
        self.py = flavor == "python"
        self.flags = flags
        # lookaheads that are not one character class become ("look", positive, body, pos) nodes
        # for json_schema.lookahead (automaton intersections); otherwise they are refused
        self.lookahead_tree = lookahead_tree

    # -- helpers -------------------------------------------------------------------------------
    def error(self, message: str, pos: int | None = None, construct: str | None = None):
        raise GrammarError(f"{message} in regex {self.p!r}", self.i if pos is None else pos, construct)

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.p[j] if j < self.n else ""

    def startswith(self, s: str) -> bool:
        return self.p.startswith(s, self.i)

    def skip_verbose(self, flags: int) -> None:
        if not (self.py and flags & re.VERBOSE):
            return
        while self.i < self.n:
            c = self.p[self.i]
            if c in " \t\n\r\f\v":
                self.i += 1
            elif c == "#":
                while self.i < self.n and self.p[self.i] != "\n":
                    self.i += 1
            else:
                return

    # -- grammar -------------------------------------------------------------------------------
    def parse(self):
        flags = self.flags
        if self.py:
            flags = self.leading_global_flags(flags)
            self.flags = flags
        node = self.parse_alternation(flags, depth=0)
        if self.i < self.n:
            if self.p[self.i] == ")":
                self.error("unbalanced parenthesis", construct="syntax")
            self.error("unexpected character", construct="syntax")
        return node

    def leading_global_flags(self, flags: int) -> int:
        # Python 3.11: global inline flags (?aiLmsux) are only allowed at the very start
        while True:
            if self.startswith("(?#"):  # comments may come before global flags
                end = self.p.find(")", self.i)
                if end < 0:
                    break  # parse_group reports the unterminated comment
                self.i = end + 1
                if flags & re.VERBOSE:
                    self.skip_verbose(flags)
                continue
            if not (self.startswith("(?") and self.peek(2) and self.peek(2) in "aiLmsux"):
                break
            j = self.i + 2
            new = 0
            while j < self.n and self.p[j] in "aiLmsux":
                new |= self.flag_value(self.p[j], j)
                j += 1
            if j < self.n and self.p[j] == ")":
                flags |= new
                self.i = j + 1
                if flags & re.VERBOSE:
                    self.skip_verbose(flags)
            else:
                break
        if flags & re.ASCII and flags & re.UNICODE:
            self.error("ASCII and UNICODE flags are incompatible", 0, "flag")
        return flags

    def flag_value(self, ch: str, pos: int) -> int:
        if ch == "L":
            self.error("the LOCALE flag is not supported (bytes patterns only)", pos, "flag")
        if ch == "u":
            return re.UNICODE
        return {"a": re.ASCII, "i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}[ch]

    def parse_alternation(self, flags: int, depth: int):
        branches = [self.parse_sequence(flags, depth)]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.parse_sequence(flags, depth))
        return branches[0] if len(branches) == 1 else ("alt", branches)

    def parse_sequence(self, flags: int, depth: int):
        items = []
        item_start = quantified = None
        while True:
            self.skip_verbose(flags)
            c = self.peek()
            if c == "" or c == "|" or c == ")":
                break
            start = self.i
            atom = self.parse_atom(flags, depth)
            if atom is None:
                # a comment group: like re, a quantifier after it applies to the item before it
                if items and self.at_quantifier():
                    if quantified:
                        self.error("multiple repeat", self.i, "syntax")
                    items[-1] = self.parse_quantifiers(items[-1], flags, item_start)
                    quantified = True
                continue
            before = self.i
            atom = self.parse_quantifiers(atom, flags, start)
            items.append(atom)
            item_start, quantified = start, self.i != before
        return items[0] if len(items) == 1 else ("seq", items)

    def at_quantifier(self) -> bool:
        c = self.peek()
        return bool(c) and (c in "*+?" or (c == "{" and self.try_brace_quantifier_peek()))

    def parse_quantifiers(self, atom, flags: int, atom_start: int):
        quantified = False
        while True:
            self.skip_verbose(flags)
            c = self.peek()
            qpos = self.i
            if c in ("*", "+", "?") and c:
                lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
                self.i += 1
            elif c == "{":
                bounds = self.try_brace_quantifier()
                if bounds is None:
                    return atom
                lo, hi = bounds
            else:
                return atom
            if quantified:
                self.error("multiple repeat", qpos, "syntax")
            quantified_assertion = False
            if atom[0] in ("zw", "look"):
                if self.p[atom_start] != "(":  # ^ $ \b \B \A \Z
                    self.error("nothing to repeat", qpos, "syntax")
                # re (and ECMAScript's Annex B, lookaheads only) repeat a lookaround group:
                # zero times is no constraint, once or more is the assertion itself
                quantified_assertion = self.p.startswith(("(?=", "(?!"), atom_start) or (
                    self.py and self.p.startswith(("(?<=", "(?<!"), atom_start))
                if not quantified_assertion and self.p.startswith(("(?<=", "(?<!"), atom_start):
                    self.error("nothing to repeat (quantified lookbehind)", qpos, "syntax")
            quantified = True
            if self.peek() == "?":  # lazy: same language under full matching
                self.i += 1
            elif self.peek() == "+" and self.py:
                self.error("possessive quantifiers change the language; not supported", self.i,
                           "possessive quantifier")
            if quantified_assertion:
                atom = ("seq", []) if lo == 0 else atom
            else:
                atom = ("rep", atom, lo, hi, qpos)

    def try_brace_quantifier(self):
        """Parse ``{m}``, ``{m,}``, ``{m,n}`` (Python also ``{,n}``); None when ``{`` is a literal."""
        j = self.i + 1
        lo_txt = ""
        while j < self.n and self.p[j].isdigit() and self.p[j] in "0123456789":
            lo_txt += self.p[j]
            j += 1
        hi_txt = None
        if j < self.n and self.p[j] == ",":
            j += 1
            hi_txt = ""
            while j < self.n and self.p[j] in "0123456789":
                hi_txt += self.p[j]
                j += 1
        if j >= self.n or self.p[j] != "}":
            return None
        if not lo_txt and (not self.py or hi_txt is None):
            return None  # "{}" or (ECMAScript) "{,n}" are literals
        lo = int(lo_txt) if lo_txt else 0
        if hi_txt is None:
            hi = lo
        else:
            hi = int(hi_txt) if hi_txt else None
        if hi is not None and hi < lo:
            self.error("min repeat greater than max repeat", self.i, "syntax")
        if lo > 100000 or (hi is not None and hi > 100000):
            self.error("repeat count too large", self.i, "syntax")
        self.i = j + 1
        return lo, hi

    def parse_atom(self, flags: int, depth: int):
        c = self.p[self.i]
        start = self.i
        if c == "(":
            return self.parse_group(flags, depth)
        if c == "[":
            return ("lit", self.parse_class(flags))
        if c in "*+?":
            self.error("nothing to repeat", construct="syntax")
        if c == "{" and self.try_brace_quantifier_peek():
            self.error("nothing to repeat", construct="syntax")
        if c == ".":
            self.i += 1
            if self.py:
                if flags & re.DOTALL:
                    return ("lit", rx.any_char())
                return ("lit", rx.negate(rx.char_set("\n")))
            if flags & re.DOTALL:
                return ("lit", rx.any_char())
            return ("lit", rx.negate(rx.char_set("\n\r\u2028\u2029")))
        if c == "^":
            self.i += 1
            con = _NL_ANCHOR if (self.py and flags & re.MULTILINE) else _ANCHOR
            return ("zw", ((con, None),), start)
        if c == "$":
            self.i += 1
            # Python "$" also matches before a final "\n"; ECMAScript "$" (no m flag) is strict
            if not self.py:
                con = _ANCHOR
            else:
                con = _NL_ANCHOR if flags & re.MULTILINE else _PY_DOLLAR
            return ("zw", ((None, con),), start)
        if c == "\\":
            return self.parse_escape_atom(flags)
        if not self.py and c in "]}":
            # Annex B allows these as literals; keep them (lenient, common in schemas)
            pass
        self.i += 1
        return ("lit", self.literal_set(ord(c), flags))

    def try_brace_quantifier_peek(self) -> bool:
        save = self.i
        try:
            return self.try_brace_quantifier() is not None
        finally:
            self.i = save

    def literal_set(self, cp: int, flags: int) -> rx.Regex:
        if 0xD800 <= cp <= 0xDFFF:
            self.error("lone surrogate code points cannot be encoded in UTF-8", self.i - 1, "surrogate")
        base = ((cp, cp),)
        if self.py and flags & re.IGNORECASE:
            return rx.chars(_python_ignorecase(re.escape(chr(cp)), flags & (re.I | re.A), base))
        return rx.Chars(base)

    # -- groups --------------------------------------------------------------------------------
    def parse_group(self, flags: int, depth: int):
        start = self.i
        self.i += 1
        if depth > 200:
            self.error("groups nested too deeply", start, "syntax")
        inner_flags = flags
        if self.peek() == "?":
            self.i += 1
            c = self.peek()
            if c == ":":
                self.i += 1
            elif c == "#" and self.py:
                end = self.p.find(")", self.i)
                if end < 0:
                    self.error("missing ), unterminated comment", start, "syntax")
                self.i = end + 1
                return None
            elif c in ("=", "!"):
                self.i += 1
                return self.lookaround(flags, depth, start, ahead=True, positive=(c == "="))
            elif c == "<" and self.peek(1) in ("=", "!") and self.peek(1):
                self.i += 2
                return self.lookaround(flags, depth, start, ahead=False, positive=(self.p[self.i - 1] == "="))
            elif c == "P" and self.py:
                self.i += 1
                if self.peek() == "<":
                    self.i += 1
                    self.group_name(start)
                elif self.peek() == "=":
                    self.error("backreferences are not supported", start, "backreference")
                else:
                    self.error("unknown extension ?P", start, "syntax")
            elif c == "<" and not self.py:
                self.i += 1
                self.group_name(start)
            elif c == "(":
                self.error("conditional groups are not supported", start, "conditional")
            elif c == ">":
                self.error("atomic groups change the language; not supported", start, "atomic group")
            elif self.py and c and (c in "aiLmsux-"):
                inner_flags = self.scoped_flags(flags, start)
            else:
                self.error(f"unknown group extension (?{c}", start, "syntax")
        body = self.parse_alternation(inner_flags, depth + 1)
        if self.peek() != ")":
            self.error("missing ), unterminated subpattern", start, "syntax")
        self.i += 1
        return body

    def lookaround(self, flags: int, depth: int, start: int, ahead: bool, positive: bool):
        """Lookaround of one character class: a constraint on the neighboring character."""
        construct = "lookahead" if ahead else "lookbehind"
        body = self.parse_alternation(flags, depth + 1)
        if self.peek() != ")":
            self.error("missing ), unterminated subpattern", start, "syntax")
        self.i += 1
        cls = None if _has_context(body) else _to_regex(body)
        if cls == rx.NOTHING:
            cls = rx.Chars(())
        if not isinstance(cls, rx.Chars):
            if ahead and self.lookahead_tree:
                return ("look", positive, body, start)
            self.error(f"{construct} is supported only for a single character class", start, construct)
        con = _con(cls.ranges, False) if positive else _con(_complement(cls.ranges), True)
        return ("zw", ((None, con),) if ahead else ((con, None),), start)

    def group_name(self, start: int) -> None:
        end = self.p.find(">", self.i)
        if end < 0:
            self.error("missing >, unterminated name", start, "syntax")
        name = self.p[self.i:end]
        if not name.isidentifier():
            self.error(f"bad character in group name {name!r}", self.i, "syntax")
        self.i = end + 1

    def scoped_flags(self, flags: int, start: int) -> int:
        on = off = 0
        while self.peek() and self.peek() in "aiLmsux":
            on |= self.flag_value(self.peek(), self.i)
            self.i += 1
        if self.peek() == "-":
            self.i += 1
            while self.peek() and self.peek() in "imsx":
                off |= self.flag_value(self.peek(), self.i)
                self.i += 1
            if not off:
                self.error("missing flag", self.i, "syntax")
        if self.peek() == ")":
            self.error("global flags not at the start of the expression", start, "flag")
        if self.peek() != ":":
            self.error("missing :", self.i, "syntax")
        self.i += 1
        if on & re.ASCII and on & re.UNICODE:
            self.error("flags 'a' and 'u' are incompatible", start, "flag")
        new = (flags | on) & ~off
        if on & re.ASCII:
            new &= ~re.UNICODE
        if on & re.UNICODE:  # (?u:...) turns ASCII matching off inside the group, as in re
            new &= ~re.ASCII
        return new

    # -- escapes -------------------------------------------------------------------------------
    def parse_escape_atom(self, flags: int):
        start = self.i
        self.i += 1
        if self.i >= self.n:
            self.error("bad escape (end of pattern)", start, "syntax")
        c = self.p[self.i]
        if c in "bB":
            self.i += 1
            word = self.shorthand("w", flags)
            is_word = _con(word, False)
            not_word = _con(_complement(word), True)
            if c == "b":
                paths = ((is_word, not_word), (not_word, is_word))
            elif self.py:  # Python (< 3.14): \B never matches the empty string
                inner = _con(_complement(word), False)
                paths = ((is_word, is_word), (not_word, inner), (inner, not_word))
            else:
                paths = ((is_word, is_word), (not_word, not_word))
            return ("zw", paths, start)
        if self.py:
            if c == "A":
                self.i += 1
                return ("zw", ((_ANCHOR, None),), start)
            if c == "Z":
                self.i += 1
                return ("zw", ((None, _ANCHOR),), start)
        else:
            if c == "k" and self.peek(1) == "<":
                self.error("backreferences are not supported", start, "backreference")
        ranges = self.parse_escape(flags, in_class=False, start=start)
        if isinstance(ranges, tuple) and ranges and ranges[0] == "cp":
            return ("lit", self.literal_set(ranges[1], flags))
        return ("lit", rx.chars(ranges))

    def shorthand(self, letter: str, flags: int) -> tuple[tuple[int, int], ...]:
        low = letter.lower()
        if self.py:
            if flags & re.ASCII:
                base = _ASCII_CLASSES[low]
            else:
                base = _python_category("\\" + low)
        else:
            base = _ECMA_CLASSES[low]
        return _complement(base) if letter.isupper() else base

    def parse_escape(self, flags: int, in_class: bool, start: int):
        """After the backslash. Returns ("cp", code_point) for a single character or a range tuple."""
        c = self.p[self.i]
        self.i += 1
        if c in "dDwWsS":
            return self.shorthand(c, flags)
        simple = {"n": 10, "t": 9, "r": 13, "f": 12, "v": 11}
        if c in simple:
            return ("cp", simple[c])
        if c == "x":
            return ("cp", self.hex_digits(2, start))
        if c == "u":
            if not self.py and self.peek() == "{":
                end = self.p.find("}", self.i)
                digits = self.p[self.i + 1:end] if end > 0 else ""
                if end < 0 or not digits or any(d not in _HEX for d in digits) or int(digits, 16) > rx.MAX_CODE_POINT:
                    self.error("bad \\u{...} escape", start, "syntax")
                self.i = end + 1
                return ("cp", int(digits, 16))
            cp = self.hex_digits(4, start)
            if not self.py and 0xD800 <= cp <= 0xDBFF and self.startswith("\\u"):
                save = self.i
                self.i += 2
                try:
                    low = self.hex_digits(4, start)
                except GrammarError:
                    low = -1
                if 0xDC00 <= low <= 0xDFFF:
                    return ("cp", 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00))
                self.i = save
            return ("cp", cp)
        if self.py:
            if c == "a":
                return ("cp", 7)
            if c == "b" and in_class:
                return ("cp", 8)
            if c == "U":
                cp = self.hex_digits(8, start)
                if cp > rx.MAX_CODE_POINT:
                    self.error("bad escape \\U (code point out of range)", start, "syntax")
                return ("cp", cp)
            if c == "N":
                if self.peek() != "{":
                    self.error("missing {", self.i, "syntax")
                end = self.p.find("}", self.i)
                if end < 0:
                    self.error("missing }, unterminated name", self.i, "syntax")
                name = self.p[self.i + 1:end]
                try:
                    ch = unicodedata.lookup(name)
                except KeyError:
                    self.error(f"undefined character name {name!r}", start, "syntax")
                self.i = end + 1
                return ("cp", ord(ch))
            if c == "0":
                digits = "0"
                while len(digits) < 3 and self.peek() and self.peek() in _OCT:
                    digits += self.p[self.i]
                    self.i += 1
                return ("cp", int(digits, 8))
            if c in "123456789":
                if in_class:
                    if c in _OCT:
                        digits = c
                        while len(digits) < 3 and self.peek() and self.peek() in _OCT:
                            digits += self.p[self.i]
                            self.i += 1
                        value = int(digits, 8)
                        if value > 0o377:
                            self.error("octal escape value outside of range 0-0o377", start, "syntax")
                        return ("cp", value)
                    self.error(f"bad escape \\{c}", start, "syntax")
                if (c in _OCT and self.peek() and self.peek() in _OCT and self.peek(1)
                        and self.peek(1) in _OCT):
                    value = int(c + self.p[self.i:self.i + 2], 8)
                    if value > 0o377:
                        self.error("octal escape value outside of range 0-0o377", start, "syntax")
                    self.i += 2
                    return ("cp", value)
                self.error("backreferences are not supported", start, "backreference")
            if c.isascii() and c.isalnum():
                self.error(f"bad escape \\{c}", start, "syntax")
            return ("cp", ord(c))
        # ECMAScript
        if c == "b" and in_class:
            return ("cp", 8)
        if c == "0" and not (self.peek() and self.peek() in "0123456789"):
            return ("cp", 0)
        if c in "0123456789":
            self.error("backreferences / legacy octal escapes are not supported", start, "backreference")
        if c == "c":
            letter = self.peek()
            if letter and letter.isascii() and letter.isalpha():
                self.i += 1
                return ("cp", ord(letter) % 32)
            self.error("bad \\c escape", start, "syntax")
        if c in "pP":
            if self.peek() != "{":
                self.error("bad \\p escape", start, "syntax")
            end = self.p.find("}", self.i)
            if end < 0:
                self.error("bad \\p escape", start, "syntax")
            ranges = _unicode_property(self.p[self.i + 1:end], start)
            self.i = end + 1
            return _complement(ranges) if c == "P" else ranges
        if c == "k":
            self.error("backreferences are not supported", start, "backreference")
        if c.isascii() and c.isalnum():
            self.error(f"unknown escape \\{c}", start, "syntax")
        return ("cp", ord(c))

    def hex_digits(self, count: int, start: int) -> int:
        digits = self.p[self.i:self.i + count]
        if len(digits) != count or any(d not in _HEX for d in digits):
            self.error(f"incomplete escape (expected {count} hex digits)", start, "syntax")
        self.i += count
        return int(digits, 16)

    # -- classes -------------------------------------------------------------------------------
    def parse_class(self, flags: int) -> rx.Regex:
        start = self.i
        self.i += 1
        negated = False
        if self.peek() == "^":
            negated = True
            self.i += 1
        parts: list[tuple[int, int]] = []
        first = True
        while True:
            if self.i >= self.n:
                self.error("unterminated character set", start, "syntax")
            c = self.p[self.i]
            if c == "]" and (not first or not self.py):
                self.i += 1
                break
            first = False
            item_pos = self.i
            lo_item = self.class_atom(flags)
            if self.peek() == "-" and self.peek(1) and self.peek(1) != "]":
                self.i += 1
                hi_pos = self.i
                hi_item = self.class_atom(flags)
                if lo_item[0] != "cp" or hi_item[0] != "cp":
                    if self.py:
                        self.error("bad character range", item_pos, "syntax")
                    # ECMAScript Annex B: a class escape next to "-" makes the "-" a literal
                    for item in (lo_item, hi_item):
                        parts.extend([(item[1], item[1])] if item[0] == "cp" else item[1])
                    parts.append((0x2D, 0x2D))
                    continue
                if hi_item[1] < lo_item[1]:
                    self.error("bad character range (reversed)", hi_pos, "syntax")
                parts.append((lo_item[1], hi_item[1]))
            elif lo_item[0] == "cp":
                parts.append((lo_item[1], lo_item[1]))
            else:
                parts.extend(lo_item[1])
        ranges = rx.normalize_ranges(parts)
        if negated:
            ranges = _complement(ranges)
        if self.py and flags & re.IGNORECASE:
            # the class's own source, negation included, evaluated by re on the case-sensitive points
            ranges = _python_ignorecase(self.p[start:self.i], flags & (re.I | re.A), ranges)
        return rx.chars(ranges)

    def class_atom(self, flags: int):
        c = self.p[self.i]
        if c == "\\":
            start = self.i
            self.i += 1
            if self.i >= self.n:
                self.error("bad escape (end of pattern)", start, "syntax")
            if not self.py and self.p[self.i] == "-":
                self.i += 1
                return ("cp", ord("-"))
            r = self.parse_escape(flags, in_class=True, start=start)
            if r and r[0] == "cp":
                if 0xD800 <= r[1] <= 0xDFFF:
                    self.error("lone surrogate code points cannot be encoded in UTF-8", start, "surrogate")
                return r
            return ("set", r)
        if c == "[" and self.py and self.peek(1) in (":", "=", ".") and self.peek(1):
            pass  # Python treats these as literals (with a FutureWarning); so do we
        self.i += 1
        return ("cp", ord(c))


# --------------------------------------------------------------------------------------------
# Context constraints: anchors, single-character lookaround, word boundaries
# --------------------------------------------------------------------------------------------
# A zero-width item constrains its neighbors. A *constraint* on one side of a match is
# (ranges, edge_ok, final_newline): the adjacent character must be in ``ranges``, or there is no
# adjacent character (the string edge) and ``edge_ok``, or (``final_newline``) it is a "\n" that
# ends the string — Python's "$" matches there; the field is also true whenever "\n" is in
# ``ranges``, so that it survives intersection. ``None`` means unconstrained.
#   ^ \A (and ECMAScript $, \Z):  ((), True)        MULTILINE ^ / $:  (("\n"), True)
#   (?=C): next in C              (?!C): next not in C or end     (and mirrored for lookbehind)
#   \b: (prev in W, next not in W or end)  or  (prev not in W or start, next in W)
#
# A *part* maps (start_constraint, end_constraint) -> regex: the node's strings along paths whose
# zero-width items left those constraints on the characters before / after the node; constraints
# that fall inside the node are already applied. Concatenation resolves them: a nonempty left side
# must end with a character the right side's start constraint allows (and vice versa); an empty
# side passes the constraint outward. At the top, fullmatch keeps the parts whose constraints accept
# the string edges; search pads with ``.*`` restricted to what the constraints allow.

Con = tuple  # (ranges, edge_ok, final_newline)
_NL = ((10, 10),)


def _has_newline(ranges) -> bool:
    return any(lo <= 10 <= hi for lo, hi in ranges)


def _con(ranges, edge_ok: bool, final_newline: bool = False) -> Con:
    """A constraint; its third field says a newline that is the string's last character is allowed
    (true whenever "\n" is in ``ranges``; Python's "$" allows it without allowing "\n" in general)."""
    return (tuple(ranges), edge_ok, final_newline or _has_newline(ranges))


def _final_newline_only(con: Con | None) -> bool:
    """``con`` allows a neighboring "\n" only when it is the last character (Python's "$")."""
    return con is not None and con[2] and not _has_newline(con[0])


_ANCHOR: Con = _con((), True)
_NL_ANCHOR: Con = _con(_NL, True)
_PY_DOLLAR: Con = _con((), True, final_newline=True)


def _meet(a: Con | None, b: Con | None) -> Con | None:
    if a is None:
        return b
    if b is None:
        return a
    return (_intersect(a[0], b[0]), a[1] and b[1], a[2] and b[2])


def _nullable(node: rx.Regex) -> bool:
    return rx.min_length(node) == 0


@lru_cache(maxsize=65536)
def _nonempty(node: rx.Regex) -> rx.Regex:
    """The non-empty strings of ``node``."""
    if not _nullable(node):
        return node
    if isinstance(node, rx.Seq):
        out = []
        for i, item in enumerate(node.items):  # first non-empty item is item i, earlier ones empty
            out.append(rx.seq(_nonempty(item), *node.items[i + 1:]))
        return rx.alt(*out)
    if isinstance(node, rx.Alt):
        return rx.alt(*(_nonempty(i) for i in node.items))
    if isinstance(node, rx.Repeat):
        if node.max == 0:
            return rx.NOTHING
        if _nullable(node.item):  # x{m,n} = x{0,n}: the first non-empty iteration leads
            rest = None if node.max is None else node.max - 1
            return rx.seq(_nonempty(node.item), rx.repeat(node.item, 0, rest))
        return rx.repeat(node.item, max(node.min, 1), node.max)
    raise TypeError(node)


@lru_cache(maxsize=65536)
def _edge_in(node: rx.Regex, ranges: tuple, at_end: bool) -> rx.Regex:
    """Non-empty strings of ``node`` whose last (``at_end``) / first character is in ``ranges``."""
    if isinstance(node, rx.Chars):
        return rx.chars(_intersect(node.ranges, ranges))
    if isinstance(node, rx.Alt):
        return rx.alt(*(_edge_in(i, ranges, at_end) for i in node.items))
    if isinstance(node, rx.Seq):
        items = node.items
        out = []
        idx = range(len(items) - 1, -1, -1) if at_end else range(len(items))
        for i in idx:
            if at_end:
                out.append(rx.seq(*items[:i], _edge_in(items[i], ranges, True)))
            else:
                out.append(rx.seq(_edge_in(items[i], ranges, False), *items[i + 1:]))
            if not _nullable(items[i]):
                break
        return rx.alt(*out)
    if isinstance(node, rx.Repeat):
        if node.max == 0:
            return rx.NOTHING
        lo = 0 if _nullable(node.item) else max(node.min - 1, 0)
        hi = None if node.max is None else node.max - 1
        others = rx.repeat(node.item, lo, hi)
        edge = _edge_in(node.item, ranges, at_end)
        return rx.seq(others, edge) if at_end else rx.seq(edge, others)
    raise TypeError(node)


def _restrict(node: rx.Regex, con: Con | None, at_end: bool, pos: int) -> rx.Regex:
    """Non-empty strings of ``node`` whose edge character satisfies ``con``."""
    if con is None:
        return _nonempty(node)
    return _edge_in(node, con[0], at_end)


@lru_cache(maxsize=65536)
def _matches_newline(node: rx.Regex) -> bool:
    """``"\n"`` is in the language of ``node``."""
    if isinstance(node, rx.Chars):
        return any(lo <= 10 <= hi for lo, hi in node.ranges)
    if isinstance(node, rx.Alt):
        return any(_matches_newline(i) for i in node.items)
    if isinstance(node, rx.Seq):
        return any(_matches_newline(it) and all(_nullable(o) for j, o in enumerate(node.items) if j != i)
                   for i, it in enumerate(node.items))
    if isinstance(node, rx.Repeat):
        return node.max != 0 and _matches_newline(node.item) and (node.min <= 1 or _nullable(node.item))
    raise TypeError(node)


def _to_regex(node) -> rx.Regex:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "seq":
        return rx.seq(*(_to_regex(n) for n in node[1]))
    if kind == "alt":
        return rx.alt(*(_to_regex(n) for n in node[1]))
    if kind == "rep":
        return rx.repeat(_to_regex(node[1]), node[2], node[3])
    raise AssertionError(kind)


def _has_context(node) -> bool:
    kind = node[0]
    if kind in ("zw", "look"):  # a lookahead tree ("look") nested in an alternation is context too
        return True
    if kind in ("seq", "alt"):
        return any(_has_context(n) for n in node[1])
    if kind == "rep":
        return _has_context(node[1])
    return False


def _context_pos(node) -> int:
    """Position of the first zero-width item in ``node`` (for error messages)."""
    if node[0] == "zw":
        return node[2]
    if node[0] == "look":
        return node[3]
    if node[0] in ("seq", "alt"):
        for n in node[1]:
            if _has_context(n):
                return _context_pos(n)
    if node[0] == "rep":
        return _context_pos(node[1])
    return 0


def _add(part: dict, key, regex: rx.Regex) -> None:
    if regex == rx.NOTHING:
        return
    part[key] = rx.alt(part[key], regex) if key in part else regex


def _concat(a: dict, b: dict, pos: int) -> dict:
    out: dict = {}
    for (sa, ea), ra in a.items():
        for (sb, eb), rb in b.items():
            if ea is None and sb is None:
                _add(out, (sa, eb), rx.seq(ra, rb))
                continue
            ra_ne = _restrict(ra, sb, True, pos)  # a's last char must satisfy b's start constraint
            rb_ne = _restrict(rb, ea, False, pos)  # b's first char must satisfy a's end constraint
            if _final_newline_only(ea) and _matches_newline(rb) and (eb is None or eb[1]):
                # Python "$" before the final "\n": b is exactly that newline, then the string ends
                newline = rx.char_set("\n")
                _add(out, (sa, _ANCHOR), rx.seq(ra_ne, newline))
                if _nullable(ra):
                    _add(out, (_meet(sa, sb), _ANCHOR), newline)
            _add(out, (sa, eb), rx.seq(ra_ne, rb_ne))
            a_empty, b_empty = _nullable(ra), _nullable(rb)
            if a_empty:  # b's start constraint passes outward, before a
                _add(out, (_meet(sa, sb), eb), rb_ne)
            if b_empty:
                _add(out, (sa, _meet(ea, eb)), ra_ne)
            if a_empty and b_empty:
                _add(out, (_meet(sa, sb), _meet(ea, eb)), rx.EMPTY)
    return out


def _eliminate(node) -> dict:
    kind = node[0]
    if not _has_context(node):
        return {(None, None): _to_regex(node)}
    if kind == "zw":
        out: dict = {}
        for key in node[1]:
            _add(out, key, rx.EMPTY)
        return out
    if kind == "alt":
        out = {}
        for n in node[1]:
            for k, r in _eliminate(n).items():
                _add(out, k, r)
        return out
    if kind == "seq":
        acc = {(None, None): rx.EMPTY}
        for n in node[1]:
            acc = _concat(acc, _eliminate(n), _context_pos(n) if _has_context(n) else _context_pos(node))
        return acc
    if kind == "rep":
        _, item, lo, hi, pos = node
        x = _eliminate(item)
        count = lo if hi is None else hi
        if count > _MAX_ANCHOR_UNROLL:
            raise GrammarError("repetition of a sub-expression with anchors/lookaround is too large", pos,
                               "anchor")
        acc = {(None, None): rx.EMPTY}
        optional_x = dict(x)
        _add(optional_x, (None, None), rx.EMPTY)
        cpos = _context_pos(item)
        for _ in range(lo):
            acc = _concat(acc, x, cpos)
        if hi is None:
            acc = _concat(acc, _star(x, cpos), cpos)
        else:
            for _ in range(hi - lo):
                acc = _concat(acc, optional_x, cpos)
        return acc
    raise AssertionError(kind)


def _star(x: dict, pos: int) -> dict:
    """Kleene star of a part. Empty iterations are dropped (they only add constraints). Between two
    iterations, each constraint must hold for every possible neighbor iteration or for none (e.g.
    "^" can never follow a character, MULTILINE "^" always follows an iteration ending in "\n");
    then an iteration is either usable inside the loop or only at its first/last place. Constraints
    that hold for some neighbors only are rejected."""
    parts = [(s, e, _nonempty(r)) for (s, e), r in x.items()]
    parts = [p for p in parts if p[2] != rx.NOTHING]
    regexes = [r for _, _, r in parts]

    def always(con, on_previous_last_char: bool) -> bool:
        if con is None:
            return True
        if _final_newline_only(con):
            raise GrammarError("'$' inside an unbounded repetition is not supported", pos, "anchor")
        inside = [_edge_in(r, con[0], on_previous_last_char) != rx.NOTHING for r in regexes]
        outside = [_edge_in(r, _complement(con[0]), on_previous_last_char) != rx.NOTHING for r in regexes]
        if not any(outside):
            return True
        if not any(inside):
            return False
        raise GrammarError("lookaround or word boundary inside an unbounded repetition that holds only for "
                           "some iterations is not supported", pos, "anchor")

    can_follow = [always(s, True) for s, _, _ in parts]  # may come after another iteration
    can_precede = [always(e, False) for _, e, _ in parts]  # may come before another iteration
    out: dict = {(None, None): rx.EMPTY}
    for s, e, r in parts:
        _add(out, (s, e), r)
    middle = rx.star(rx.alt(*(r for (_, _, r), f, p in zip(parts, can_follow, can_precede) if f and p)))
    firsts: dict = {}
    lasts: dict = {}
    for (s, e, r), f, p in zip(parts, can_follow, can_precede):
        if p:
            _add(firsts, s, r)
        if f:
            _add(lasts, e, r)
    for s, first in firsts.items():
        for e, last in lasts.items():
            _add(out, (s, e), rx.seq(first, middle, last))
    return out


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------

def _check_args(flavor: str, flags: int) -> None:
    if flavor not in FLAVORS:
        raise GrammarError(f"unknown regex flavor {flavor!r} (expected one of {FLAVORS})", None, "flavor")
    flags = int(flags)
    if flavor == "python":
        if flags & ~_SUPPORTED_PY_FLAGS:
            raise GrammarError(f"unsupported regex flags {flags:#x} (LOCALE/DEBUG/TEMPLATE)", None, "flag")
    elif flags & ~(re.DOTALL):
        raise GrammarError("ecmascript flavor supports only the DOTALL (s) flag", None, "flag")


@lru_cache(maxsize=4096)
def _parse_parts(pattern: str, flavor: str, flags: int) -> tuple:
    _check_args(flavor, flags)
    if not isinstance(pattern, str):
        raise GrammarError("regex pattern must be a str", None, "syntax")
    parser = _Parser(pattern, flavor, int(flags))
    tree = parser.parse()
    return tuple(_eliminate(tree).items())


def parse_regex(pattern: str, flavor: str = "python", flags: int = 0) -> rx.Regex:
    """The language of strings ``pattern`` matches in full (``re.fullmatch`` semantics)."""
    parts = _parse_parts(pattern, flavor, int(flags))
    # at the string edges there is no neighboring character: keep paths whose constraints allow that
    return rx.alt(*(r for (s, e), r in parts if (s is None or s[1]) and (e is None or e[1])))


def parse_lexeme_regex(pattern: str, flavor: str = "python", flags: int = 0) -> rx.Regex:
    """The language of a grammar terminal's regex, matched (as Lark's lexers do) at a position
    inside a longer text. An anchor, lookaround or word boundary at the edge of the lexeme would
    test the neighboring lexemes' characters, which a terminal's own language cannot express:
    such a pattern raises GrammarError. Reading it with ``parse_regex``'s fullmatch semantics
    would accept ``foo`` + ``/\\bend/`` as "fooend" (looser than the grammar) and empty
    ``/a(?=b)/`` outright (stricter)."""
    parts = _parse_parts(pattern, flavor, int(flags))
    for (s, e), r in parts:
        if (s is not None or e is not None) and rx.min_length(r) < (1 << 30):
            side = "before" if s is not None else "after"
            raise GrammarError(
                f"regex {pattern!r} tests the text {side} its match (anchor, lookaround or word boundary "
                "at the edge of a terminal); a terminal's language cannot depend on its neighbors",
                None, "lookaround at a terminal edge")
    return rx.alt(*(r for _, r in parts))


def search_regex(pattern: str, flavor: str = "ecmascript", flags: int = 0) -> rx.Regex:
    """The language of strings containing a match of ``pattern`` anywhere (``re.search`` semantics,
    JSON Schema ``pattern``): ``.*(p).*`` where anchors that were used pin the match to an edge."""
    parts = _parse_parts(pattern, flavor, int(flags))
    anything = rx.star(rx.any_char())
    out = []
    for (s, e), r in parts:
        if s is None and e is None and isinstance(r, rx.Repeat) and isinstance(r.item, rx.Chars) and r.min >= 2:
            out.append(_contains_run(r.item, r.min))
            continue
        if s is None:
            before = anything
        else:
            before = rx.alt(rx.EMPTY if s[1] else rx.NOTHING, rx.seq(anything, rx.chars(s[0])))
        if e is None:
            after = anything
        else:
            after = rx.alt(rx.EMPTY if e[1] else rx.NOTHING, rx.seq(rx.chars(e[0]), anything),
                           rx.char_set("\n") if _final_newline_only(e) else rx.NOTHING)
        out.append(rx.seq(before, r, after))
    return rx.alt(*out)


def _contains_run(cls: rx.Chars, n: int) -> rx.Regex:
    """The strings holding ``n`` consecutive characters of ``cls`` (an unanchored `[a-z0-9_-]{162}`,
    whatever its upper bound): the first such run starts after a prefix whose runs are all
    shorter. The same language as ``.*C{n}.*``, whose subset construction tracks every position
    a run might have started at (~0.5 s for n = 162, inside a first mask); this one tracks one."""
    short_runs = rx.star(rx.seq(rx.repeat(cls, 0, n - 1), rx.negate(cls)))
    return rx.seq(short_runs, rx.repeat(cls, n, n), rx.star(rx.any_char()))


def _group_end(pattern: str, open_at: int) -> int:
    """Index of the ')' closing the group opened at ``open_at`` (escapes and classes skipped);
    -1 when unbalanced."""
    depth, i, in_class = 0, open_at, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _has_top_level_bar(pattern: str) -> bool:
    depth, i, in_class = 0, 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            return True
        i += 1
    return False


def search_regex_parts(pattern: str, flavor: str = "ecmascript", flags: int = 0) -> tuple[list, list]:
    """``search_regex`` for patterns that open with lookaheads: ``^(?=A)(?!B)R`` holds exactly for
    the strings in search(^A) and search(^R) and not in search(^B), so the lookaheads become
    (positives, negatives) for an automaton intersection (the JSON Schema compiler's). Any other
    pattern: ([search_regex(pattern)], [])."""
    if not pattern.startswith("^") or not pattern.startswith(("^(?=", "^(?!")):
        return [search_regex(pattern, flavor, flags)], []
    positives, negatives = [], []
    i = 1
    while pattern.startswith(("(?=", "(?!"), i):
        end = _group_end(pattern, i)
        if end < 0:
            break
        body = pattern[i + 3:end]
        (positives if pattern[i + 2] == "=" else negatives).append(search_regex("^" + body, flavor, flags))
        i = end + 1
    rest = pattern[i:]
    if not (positives or negatives) or _has_top_level_bar(rest):
        # "^(?=a)b|c": the alternation is outside the anchored lookaheads' scope
        return [search_regex(pattern, flavor, flags)], []
    positives.append(search_regex("^" + rest, flavor, flags))
    return positives, negatives
