"""Value constraints no context-free rule can state: arrays of pairwise distinct JSON values.

``Grammar.unique_arrays`` names, per such array, the terminal that opens it and the nonterminals of
its own structure. The grammar accepts the array with repeats; this module owns what the Matcher
adds on top:

* per accepted token, an immutable stack of ``Frame``s (one per open unique array, innermost
  last; tuples, so rollback and fork stay cheap): the canonical values of the items so far and the
  raw bytes and scan state of the item being written;
* ``advance``: stepping the parser over bytes while keeping the frames. When an item closes with a
  value seen before, the parses of that array are removed from the parser state
  (``ParserStates.without``); what is left (an overlapping branch without uniqueItems) goes on, and
  nothing left means the bytes are rejected. This is exact: the unique parse dies, the others do
  not;
* ``filter_mask``: the grammar's (memoized) mask minus the tokens that would close a repeated
  item. Candidates come from an index of the vocabulary (tokens by their bytes before the first
  quote; tokens with two quotes or an escape; tokens with a closing bracket, after a quote
  for a container item left inside a string; tokens with a delimiter; tokens that may hold a whole
  item), chosen by what the current item is and intersected with the mask in numpy, and each candidate is checked exactly with
  ``advance``: no Python pass over the vocabulary.

Items close at their last byte (a string's quote, a container's bracket) or, for numbers, at the
delimiter after them. Values compare by JSON equality (``_canonical``: 1 == 1.0, true != 1, key
order ignored). Why deciding at the close keeps masks exact: the compiler only emits unique arrays
whose item language is open-ended (every item prefix has infinitely many completions,
``Compiler._unique_open_array``), so no prefix can be forced into a repeat before it closes. The
one exception is integer items (``Grammar.unique_integer_items``): "0", "-0" and "12." already fix
the value (only zeros may follow), and so does "-" where no negative integer is allowed; and for
any item, a scalar's first letters fix a literal ("t": true). Those prefixes are checked as they
appear.
"""
from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from corral.automata.earley import DEAD, item_pos

_QUOTE, _BACKSLASH, _LBRACKET, _RBRACKET = 0x22, 0x5C, 0x5B, 0x5D
_WS = frozenset(b" \t\n\r")
_DELIMITERS = frozenset(b" \t\n\r,]}")
_OPENERS, _CLOSERS = frozenset(b"{["), frozenset(b"}]")

BETWEEN, STRING, CONTAINER, SCALAR = 0, 1, 2, 3  # Frame.kind: what the current item is
_NO_VALUE = object()


@dataclass(frozen=True)
class Frame:
    blocked: frozenset  # nonterminal ids of the unique arrays this '[' may have opened
    values: frozenset  # canonical values of the items so far
    int_blocked: frozenset = frozenset()  # those of arrays whose numeric items are integers
    int_arrays: tuple = ()  # those arrays' (nonterminal ids, lo, hi, minItems), bounds inclusive or None
    # arrays whose items are a finite set of strings: (nonterminal ids, sorted strings, the same
    # as a frozenset, minItems) each (``Grammar.unique_string_domains``)
    domains: tuple = ()
    expect: bool = False  # between items after a comma: an item must follow
    kind: int = BETWEEN
    item: bytes = b""  # raw bytes of the current item (a string's without its opening quote)
    depth: int = 0  # bracket depth inside a container item
    in_string: bool = False  # inside a string within a container item
    escaped: bool = False  # the previous byte was an escaping backslash
    # arrays whose item language is closed (``Grammar.unique_searched``): their ids, the largest
    # minItems among them, and the used values the current item may still be spelled as (a
    # superset; None: not narrowed yet). Not part of equality: it only saves work.
    searched: frozenset = frozenset()
    searched_min: int = 0
    cands: tuple | None = field(default=None, compare=False)
    checkpoints: dict = field(default_factory=dict, compare=False)  # cand -> ``_checkpoint`` in the item


def replace(f: Frame, **changes) -> Frame:
    """``dataclasses.replace`` without its per-field checks (5x faster: frames change per byte)."""
    g = object.__new__(Frame)
    d = g.__dict__
    d.update(f.__dict__)
    d.update(changes)
    return g


def _canonical(v):
    """A hashable form under which JSON-equal values are equal (json.loads with Decimal numbers)."""
    if v is None or isinstance(v, bool):
        return ("literal", v)
    if isinstance(v, Decimal):
        return ("number", v)  # Decimal equality and hash are numeric: 1.0 == 1
    if isinstance(v, str):
        return ("string", v)
    if isinstance(v, list):
        return ("array", tuple(_canonical(x) for x in v))
    return ("object", frozenset((k, _canonical(x)) for k, x in v.items()))


def _value(raw: bytes, kind: int):
    try:
        if kind == STRING:
            return ("string", json.loads(b'"' + raw + b'"'))
        return _canonical(json.loads(raw, parse_float=Decimal, parse_int=Decimal))
    except ValueError:
        return _NO_VALUE  # not a JSON value: the unique parse is dead anyway


_LITERALS = ((b"true", ("literal", True)), (b"false", ("literal", False)), (b"null", ("literal", None)))


def _literal_value(item: bytes):
    """The literal a scalar item that starts with a letter must become (None: not a literal)."""
    for spelling, value in _LITERALS:
        if item and spelling.startswith(item):
            return value
    return None


def _integer_value(item: bytes):
    """The value an integer item already has: every integer spelling that starts "0" or "-0" is 0,
    and one with a '.' has only zeros after it; None while digits may still follow."""
    if item.startswith((b"0", b"-0")):
        return ("number", Decimal(0))
    dot = item.find(b".")
    if dot > 0:
        try:
            return ("number", Decimal(item[:dot].decode("ascii")))
        except ArithmeticError:
            return None
    return None


def _scan(f: Frame, b: int) -> tuple[Frame | None, object]:
    """One byte through one frame: (frame or None when its array is over, completed value)."""
    k = f.kind
    if k == STRING:
        if f.escaped:
            return replace(f, item=f.item + bytes((b,)), escaped=False), _NO_VALUE
        if b == _BACKSLASH:
            return replace(f, item=f.item + bytes((b,)), escaped=True), _NO_VALUE
        if b == _QUOTE:
            return replace(f, kind=BETWEEN, item=b"", cands=None), _value(f.item, STRING)
        return replace(f, item=f.item + bytes((b,))), _NO_VALUE
    if k == CONTAINER:
        item = f.item + bytes((b,))
        if f.in_string:
            if f.escaped:
                return replace(f, item=item, escaped=False), _NO_VALUE
            return replace(f, item=item, escaped=b == _BACKSLASH, in_string=b != _QUOTE), _NO_VALUE
        if b == _QUOTE:
            return replace(f, item=item, in_string=True), _NO_VALUE
        if b in _OPENERS:
            return replace(f, item=item, depth=f.depth + 1), _NO_VALUE
        if b in _CLOSERS:
            if f.depth == 1:
                return replace(f, kind=BETWEEN, item=b"", depth=0, cands=None), _value(item, CONTAINER)
            return replace(f, item=item, depth=f.depth - 1), _NO_VALUE
        return replace(f, item=item), _NO_VALUE
    if k == SCALAR:
        if b not in _DELIMITERS:
            return replace(f, item=f.item + bytes((b,))), _NO_VALUE
        value = _value(f.item, SCALAR)
        nxt, _ = _scan(replace(f, kind=BETWEEN, item=b"", cands=None), b)  # the delimiter, at list level
        return nxt, value
    # between items, at the array's own level
    if b == _QUOTE:
        return replace(f, kind=STRING, item=b"", escaped=False, expect=False), _NO_VALUE
    if b in _OPENERS:
        return replace(f, kind=CONTAINER, item=bytes((b,)), depth=1, in_string=False, escaped=False,
                       expect=False), _NO_VALUE
    if b in _WS:
        return f, _NO_VALUE
    if b == 0x2C:
        return (f if f.expect else replace(f, expect=True)), _NO_VALUE
    if b == _RBRACKET or b == 0x7D:
        return None, _NO_VALUE
    return replace(f, kind=SCALAR, item=bytes((b,)), expect=False), _NO_VALUE


_SHORT_ESCAPES = {'"': b'\\"', "\\": b"\\\\", "/": b"\\/", "\b": b"\\b", "\f": b"\\f", "\n": b"\\n",
                  "\r": b"\\r", "\t": b"\\t"}


def _string_prefix(raw: bytes) -> tuple[str, bytes] | None:
    """(decoded text, bytes of an unfinished character or escape) of a JSON string's content read
    so far; None when it is no valid prefix."""
    out: list[str] = []
    i, n = 0, len(raw)
    try:
        while i < n:
            b = raw[i]
            if b == _BACKSLASH:
                if i + 1 >= n:
                    return "".join(out), raw[i:]
                if raw[i + 1] != 0x75:  # a short escape
                    out.append(json.loads(b'"' + raw[i:i + 2] + b'"'))
                    i += 2
                    continue
                if i + 6 > n:
                    return "".join(out), raw[i:]
                cp = int(raw[i + 2:i + 6], 16)
                if 0xD800 <= cp < 0xDC00:  # a surrogate pair: \uD8xx\uDCxx
                    if i + 12 > n:
                        return "".join(out), raw[i:]
                    low = int(raw[i + 8:i + 12], 16)
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00)
                    i += 12
                else:
                    i += 6
                out.append(chr(cp))
                continue
            size = 1 if b < 0x80 else 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            if i + size > n:
                return "".join(out), raw[i:]
            out.append(raw[i:i + size].decode("utf-8"))
            i += size
    except (ValueError, UnicodeDecodeError):
        return None
    return "".join(out), b""


def _closing_quote(content: bytes) -> int | None:
    """Index of the first unescaped quote in a JSON string's content (None: still open)."""
    i, n = 0, len(content)
    while i < n:
        b = content[i]
        if b == _BACKSLASH:
            i += 2
            continue
        if b == _QUOTE:
            return i
        i += 1
    return None


def _can_spell(pending: bytes, c: str) -> bool:
    """Some JSON spelling of the character ``c`` starts with ``pending``."""
    cp = ord(c)
    if c not in '"\\' and cp >= 0x20 and c.encode("utf-8").startswith(pending):
        return True
    if not pending.startswith(b"\\"):
        return False
    low = pending.lower()
    if _SHORT_ESCAPES.get(c, b"-").startswith(low):
        return True
    if cp > 0xFFFF:
        v = cp - 0x10000
        esc = b"\\u%04x\\u%04x" % (0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
    else:
        esc = b"\\u%04x" % cp
    return esc.startswith(low)


_ENOUGH = 1 << 62  # "more integers than any array can use"


def _count_between(lo, hi, a: int, b: int) -> int:
    """How many integers of [a, b] lie in [lo, hi] (None: unbounded)."""
    a = a if lo is None else max(a, lo)
    b = b if hi is None else min(b, hi)
    return max(0, b - a + 1)


def _integer_completions(item: bytes, lo, hi, limit: int):
    """The integers in [lo, hi] whose spelling can start with ``item`` (digits after an optional
    '-'), as a list when at most ``limit`` of them, else None (many, or unbounded)."""
    negative = item.startswith(b"-")
    digits = item[1:] if negative else item
    if not digits.isdigit() and digits:
        return []
    out = []
    for length in range(max(len(digits), 1), 20):
        if digits:
            base = int(digits) * 10 ** (length - len(digits))
            a, b = base, base + 10 ** (length - len(digits)) - 1
            if length > len(digits) and digits.startswith(b"0"):
                break  # no leading zeros
        else:
            a, b = (10 ** (length - 1) if length > 1 else 0), 10 ** length - 1
        if negative:
            a, b = -b, -a
        if (not negative and hi is None) or (negative and lo is None):
            return None  # unbounded in the direction the prefix grows
        n = _count_between(lo, hi, a, b)
        if len(out) + n > limit:
            return None
        a = a if lo is None else max(a, lo)
        out.extend(range(a, a + n))
    return out


def _integers_dead(f: Frame, entry) -> bool:
    """Bounded integer items: no unused integer can complete the item being read, or fewer unused
    integers are left than minItems still needs."""
    _, lo, hi, min_items = entry
    used = {v for kind, v in f.values if kind == "number" and v == v.to_integral_value()}
    total = _count_between(lo, hi, -_ENOUGH, _ENOUGH)
    in_range = sum(1 for v in used if (lo is None or v >= lo) and (hi is None or v <= hi))
    unused = total - in_range
    if f.kind == BETWEEN:
        return unused < max(min_items - len(f.values), 1 if f.expect else 0)
    if f.kind != SCALAR or not f.item[:1] or f.item[:1] not in b"-0123456789" or b"." in f.item:
        return False  # ("12." and "0…" fix the value: checked byte by byte)
    if unused < min_items - len(f.values):
        return True
    values = _integer_completions(f.item.split(b"e")[0].split(b"E")[0], lo, hi, len(used) + 1)
    if values is None or (b"e" in f.item or b"E" in f.item):
        return False
    return all(Decimal(v) in used for v in values)


def _domain_dead(f: Frame, domain) -> bool:
    """No unused value of a finite string domain can complete the array from here: none fits the
    item being read, or fewer are left than minItems still needs."""
    _, values, value_set, min_items = domain
    used = sum(1 for kind, v in f.values if kind == "string" and v in value_set)
    unused = len(values) - used
    if f.kind == BETWEEN:
        return unused < max(min_items - used, 1 if f.expect else 0)
    if f.kind != STRING:
        return False
    if unused - 1 < min_items - used - 1:
        return True
    prefix = _string_prefix(f.item)
    if prefix is None:
        return False
    text, pending = prefix
    for i in range(bisect.bisect_left(values, text), len(values)):
        u = values[i]
        if not u.startswith(text):
            break
        if ("string", u) in f.values:
            continue
        if not pending or (len(u) > len(text) and _can_spell(pending, u[len(text)])):
            return False
    return True


def _used_fits(f: Frame) -> bool:
    """A used value fits the item being read (the next bytes may leave only used values)."""
    prefix = _string_prefix(f.item)
    if prefix is None:
        return True
    text = prefix[0]
    return any(kind == "string" and v.startswith(text) for kind, v in f.values)


# -- closed item languages: can the item being read still become an unused value? -------------------
_PARTIAL = -1  # the data ended inside the value
_NUMBER_BYTES = frozenset(b"0123456789+-.eE")


def _skip_ws(data: bytes, i: int) -> int:
    n = len(data)
    while i < n and data[i] in _WS:
        i += 1
    return i


def _string_at(data: bytes, i: int):
    """A JSON string's content from ``i`` (just past its opening quote): (text, index past the
    closing quote or None while open, bytes of an unfinished character); None when invalid."""
    j = data.find(b'"', i)
    if data.find(b"\\", i, len(data) if j < 0 else j) < 0:  # no escape: plain UTF-8
        try:
            return (data[i:].decode("utf-8"), None, b"") if j < 0 else (data[i:j].decode("utf-8"), j + 1, b"")
        except UnicodeDecodeError:
            pass  # an unfinished character at the end, or invalid: the careful way below
    end = _closing_quote(data[i:])
    if end is None:
        prefix = _string_prefix(data[i:])
        return None if prefix is None else (prefix[0], None, prefix[1])
    prefix = _string_prefix(data[i:i + end])
    if prefix is None or prefix[1]:
        return None
    return prefix[0], i + end + 1, b""


def _text_fits(text: str, pending: bytes, target: str) -> bool:
    """Some spelling of ``target`` starts with the decoded ``text`` and then ``pending``."""
    if not target.startswith(text):
        return False
    return not pending or (len(target) > len(text) and _can_spell(pending, target[len(text)]))


def _number_prefix_fits(v: Decimal, run: bytes) -> bool:
    """Some number spelling that starts with ``run`` equals ``v`` (may answer True wrongly, never
    False wrongly: a superset only costs search)."""
    text = run.decode("ascii", "replace")
    negative = text.startswith("-")
    body = text[1:] if negative else text
    if (negative and v > 0) or (not negative and v < 0):
        return False
    if "e" in body or "E" in body:
        return True
    digits = body.replace(".", "").lstrip("0").rstrip("0")
    if not digits:
        return True  # "0", "0.0…": any value may still follow
    if v == 0:
        return False
    significant = "".join(map(str, abs(v).normalize().as_tuple().digits)).rstrip("0")
    return significant.startswith(digits)


_MISMATCH = -2
_CANONICAL: dict = {}  # string -> its shortest JSON spelling's content bytes


def _common_prefix(a: bytes, b: bytes) -> int:
    lo, hi = 0, min(len(a), len(b))
    if a[:hi] == b[:hi]:
        return hi
    while lo < hi:  # a[:lo] == b[:lo], a[:hi] != b[:hi]
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _match_canonical_string(x: str, data: bytes, i: int) -> int | None:
    """The string ``x`` against a string's content at ``data[i:]`` by bytes, when that decides
    it (no escape before the first difference): the index past the closing quote, _PARTIAL,
    _MISMATCH; None when only decoding can tell."""
    canon = _CANONICAL.get(x)
    if canon is None:
        canon = json.dumps(x, ensure_ascii=False)[1:-1].encode("utf-8")
        if len(_CANONICAL) > 65536:
            _CANONICAL.clear()
        _CANONICAL[x] = canon
    raw = data[i:i + len(canon) + 1]
    k = _common_prefix(raw, canon)
    if k == len(canon):
        if k == len(raw):
            return _PARTIAL  # the data ends right before the closing quote
        return i + k + 1 if raw[k] == _QUOTE else None  # a quote closes it; else an escape may
    if k == len(raw):
        return _PARTIAL  # the data ends inside the canonical spelling
    if _BACKSLASH in raw[:k + 1] or _BACKSLASH in canon[:k + 1]:
        return None
    return _MISMATCH


def _match_value(v, data: bytes, i: int, resume=None, record=None) -> int | None:
    """Index past a spelling of the canonical value ``v`` at ``data[i:]`` (any whitespace, key
    order, escapes, number spelling), ``_PARTIAL`` when ``data`` ends inside one, None when no
    spelling of ``v`` starts there.

    For an array or object: ``record`` (a one-element list) receives a checkpoint after each
    complete element or member, (index, elements done or keys used); ``resume`` starts from one,
    so a long item is not read again for every byte a walk or search tries after it."""
    n = len(data)
    if resume is not None:
        return (_match_elements if v[0] == "array" else _match_members)(v[1], data, resume[0], resume[1], record)
    i = _skip_ws(data, i)
    if i >= n:
        return _PARTIAL
    kind, x = v
    b = data[i]
    if kind == "string":
        if b != _QUOTE:
            return None
        fast = _match_canonical_string(x, data, i + 1)
        if fast is not None:
            return fast if fast >= 0 else (None if fast == _MISMATCH else _PARTIAL)
        s = _string_at(data, i + 1)
        if s is None:
            return None
        text, end, pending = s
        if end is None:
            return _PARTIAL if _text_fits(text, pending, x) else None
        return end if text == x else None
    if kind == "number":
        j = i
        while j < n and data[j] in _NUMBER_BYTES:
            j += 1
        if j == i:
            return None
        if j == n:
            return _PARTIAL if _number_prefix_fits(x, data[i:j]) else None
        try:
            return j if Decimal(data[i:j].decode("ascii")) == x else None
        except ArithmeticError:
            return None
    if kind == "literal":
        spelling = b"true" if x is True else b"false" if x is False else b"null"
        rest = data[i:i + len(spelling)]
        if not spelling.startswith(rest):
            return None
        return _PARTIAL if len(rest) < len(spelling) else i + len(spelling)
    if kind == "array":
        if b != _LBRACKET:
            return None
        return _match_elements(x, data, i + 1, 0, record)
    if b != 0x7B:
        return None
    return _match_members(x, data, i + 1, (), record)


def _match_elements(x: tuple, data: bytes, i: int, done: int, record) -> int | None:
    """An array's elements from the ``done``-th on, at ``data[i:]`` (past '[' or an element)."""
    n = len(data)
    for k in range(done, len(x)):
        i = _skip_ws(data, i)
        if i >= n:
            return _PARTIAL
        if k:
            if data[i] != 0x2C:
                return None
            i += 1
        r = _match_value(x[k], data, i)
        if r is None or r == _PARTIAL:
            return r
        i = r
        if record is not None:
            record[0] = (i, k + 1)
    i = _skip_ws(data, i)
    if i >= n:
        return _PARTIAL
    return i + 1 if data[i] == _RBRACKET else None


def _match_members(x: frozenset, data: bytes, i: int, used: tuple, record) -> int | None:
    """An object's members other than the keys ``used``, in any order, each key once, at
    ``data[i:]`` (past '{' or a member)."""
    n = len(data)
    remaining = dict(x)
    for k in used:
        del remaining[k]
    first = not used
    while True:
        i = _skip_ws(data, i)
        if i >= n:
            return _PARTIAL
        if not remaining:
            return i + 1 if data[i] == 0x7D else None
        if not first:
            if data[i] != 0x2C:
                return None
            i = _skip_ws(data, i + 1)
            if i >= n:
                return _PARTIAL
        if data[i] != _QUOTE:
            return None
        s = _string_at(data, i + 1)
        if s is None:
            return None
        text, end, pending = s
        if end is None:
            return _PARTIAL if any(_text_fits(text, pending, k) for k in remaining) else None
        if text not in remaining:
            return None
        i = _skip_ws(data, end)
        if i >= n:
            return _PARTIAL
        if data[i] != 0x3A:
            return None
        r = _match_value(remaining.pop(text), data, i + 1)
        if r is None or r == _PARTIAL:
            return r
        i = r
        first = False
        if record is not None:
            used = used + (text,)
            record[0] = (i, used)


_SPELLED: dict = {}  # (value, item bytes) -> _spelled_as: searches of nearby tokens ask again


def _spelled_as(v, data: bytes, resume=None) -> bool:
    """``data`` (an item read so far) is a prefix of some JSON spelling of the canonical value
    ``v``; ``resume``: a checkpoint of ``v`` in a prefix of ``data`` (``_checkpoint``)."""
    key = (v, data)
    hit = _SPELLED.get(key)
    if hit is None:
        r = _match_value(v, data, 0, resume)
        hit = r is not None and (r == _PARTIAL or not data[r:].strip(b" \t\n\r"))
        if len(_SPELLED) > 65536:
            _SPELLED.clear()
        _SPELLED[key] = hit
    return hit


def _closing_values(f: Frame) -> frozenset:
    """The values the item being read has if it closes at the next byte (a token may close it
    and start an equal one after a comma)."""
    if f.kind == STRING and not f.escaped:
        out = {_value(f.item, STRING)}
    elif f.kind == CONTAINER and f.depth == 1 and not f.in_string:
        out = {_value(f.item + b"}", CONTAINER), _value(f.item + b"]", CONTAINER)}
    elif f.kind == SCALAR:
        out = {_value(f.item, SCALAR)}
    else:
        return frozenset()
    out.discard(_NO_VALUE)
    return frozenset(out)


def _closes(f: Frame, b: int) -> bool:
    """The byte ``b`` closes the item being read."""
    if f.kind == STRING:
        return b == _QUOTE and not f.escaped
    if f.kind == CONTAINER:
        return b in _CLOSERS and f.depth == 1 and not f.in_string
    return f.kind == SCALAR and b in _DELIMITERS


def _item_bytes(f: Frame) -> bytes:
    return b'"' + f.item if f.kind == STRING else f.item


def _checkpoint(v, data: bytes, resume=None):
    """(``_spelled_as``, where matching ``v`` against longer data may resume: after the last
    complete element or member of a top-level array or object, None: from the start)."""
    record = [resume]
    r = _match_value(v, data, 0, resume, record if v[0] in ("array", "object") else None)
    return r is not None and (r == _PARTIAL or not data[r:].strip(b" \t\n\r")), record[0]


def _narrow(f: Frame) -> Frame:
    """``f`` with ``cands`` cut to the used values its current item may still be spelled as, each
    with its checkpoint in the item."""
    cands = f.values if f.cands is None else f.cands
    data = _item_bytes(f)
    old = f.checkpoints if f.cands is not None else {}
    checkpoints = {}
    for u in cands:
        spelled, checkpoint = _checkpoint(u, data, old.get(u))
        if spelled:
            checkpoints[u] = checkpoint
    return replace(f, cands=tuple(checkpoints), checkpoints=checkpoints)


SEARCH_NODES = 2048  # prefixes one search may visit before it answers "alive"


@dataclass(frozen=True)
class _VocabIndex:
    """Per frame kind, the tokens that can complete an item (supersets; each is checked exactly)."""
    by_prefix: dict  # bytes before the first quote (no backslash in them) -> int64 token ids
    slow: np.ndarray  # quote tokens the by_prefix look-up cannot decide: 2+ quotes, a backslash, or
    #                   a closer / scalar end after the quote (one more item may complete after it)
    quoted: np.ndarray  # every token with a quote
    closers: np.ndarray  # tokens with '}' or ']'
    quote_closers: np.ndarray  # a quote, and a '}' or ']' after it (a container item left in a string)
    delimited: np.ndarray  # tokens with a byte that ends a number (',', ']', '}', whitespace)
    zero_or_dot: np.ndarray  # tokens with '0', '.' or '-': may fix an integer item's value
    literal_bytes: np.ndarray  # tokens whose first byte past spaces and commas is a letter of
    #                            true / false / null: may start or go on with a literal
    whole_items: np.ndarray  # tokens that may hold a whole item: 2+ quotes, an opener then a
    #                          closer, or a scalar byte followed by a delimiter
    # tokens with a comma and then more than whitespace (may close an item and start another): by
    # what follows the comma (whitespace stripped) when only a closing quote, bracket or whitespace
    # precedes it; the others (more commas, or item content before the comma, whose closed value
    # the mask cannot know in advance) in one array, always candidates
    restarts: dict
    restarts_always: np.ndarray
    # For the string-domain filter: tokens it must look at are those that may spell (part of) a
    # used value, found by looking up the used values' byte prefixes; every other allowed token
    # extends an unused value
    plain_exact: dict  # token bytes -> ids, for tokens without a quote or a backslash
    item_start: dict  # content after the quote -> ids, for tokens of only whitespace or commas, one
    #                   quote, then content without a backslash (and not in ``slow``)
    quoted_other: np.ndarray  # the other quote tokens (something before the quote, or ``slow``)
    backslash: np.ndarray  # tokens with a backslash (an escape may spell any character)
    max_token_bytes: int  # the longest token: no spelling prefix past it can be one token


_SCALAR_BYTES = frozenset(range(256)) - _DELIMITERS - _OPENERS - _CLOSERS - {_QUOTE}


def _byte_class(byte_set) -> bytes:
    return b"[" + b"".join(re.escape(bytes([b])) for b in sorted(byte_set)) + b"]"


# a scalar byte right before a delimiter; any delimiter (searched in C: the per-vocabulary index
# below looks at every token, and byte-by-byte generator loops made it ~1 s on Llama-3)
_SCALAR_END_RE = re.compile(_byte_class(_SCALAR_BYTES) + _byte_class(_DELIMITERS))
_DELIMITER_RE = re.compile(_byte_class(_DELIMITERS))


def _scalar_end(data: bytes, start: int = 0) -> bool:
    return _SCALAR_END_RE.search(data, start) is not None


_NO_IDS = np.zeros(0, dtype=np.int64)


def vocab_index(vocab) -> _VocabIndex:
    """The per-vocabulary token index of unique-items arrays (cached in ``vocab.cache``)."""
    hit = vocab.cache.get("corral.unique_index")
    if hit is None:
        by_prefix: dict[bytes, list[int]] = {}
        slow, quoted, closers, quote_closers, delimited, whole, zero_or_dot, literal_bytes = [], [], [], [], [], [], [], []
        restarts: dict[bytes, list[int]] = {}
        restarts_always = []
        plain_exact: dict[bytes, list[int]] = {}
        item_start: dict[bytes, list[int]] = {}
        quoted_other, backslash = [], []
        for tok in range(vocab.size):
            data = vocab.token_bytes(tok)
            if not data:
                continue
            if b"\\" in data:
                backslash.append(tok)
            elif b'"' not in data:
                plain_exact.setdefault(data, []).append(tok)
            closer_at = max(data.rfind(b"}"), data.rfind(b"]"))
            if closer_at >= 0:
                closers.append(tok)
            if _DELIMITER_RE.search(data) is not None:
                delimited.append(tok)
            comma = data.find(b",")
            if comma >= 0 and data[comma + 1:].strip(b" \t\n\r"):
                if data.count(b",") > 1 or data[:comma].strip(b' \t\n\r"]}'):
                    restarts_always.append(tok)
                else:
                    restarts.setdefault(data[comma + 1:].lstrip(b" \t\n\r"), []).append(tok)
            if b"0" in data or b"." in data or b"-" in data:
                zero_or_dot.append(tok)
            significant = data.lstrip(b" \t\n\r,")
            if significant[:1] and significant[0] in b"truefalsn":
                literal_bytes.append(tok)
            opener_at = min((i for i in (data.find(b"{"), data.find(b"[")) if i >= 0), default=-1)
            if data.count(b'"') > 1 or 0 <= opener_at < closer_at or _scalar_end(data):
                whole.append(tok)
            k = data.find(b'"')
            if k < 0:
                continue
            quoted.append(tok)
            if closer_at > k:
                quote_closers.append(tok)
            if data.count(b'"') > 1 or b"\\" in data or closer_at > k or _scalar_end(data, k + 1):
                slow.append(tok)
                quoted_other.append(tok)
            else:
                by_prefix.setdefault(data[:k], []).append(tok)
                if data[:k].strip(b" \t\n\r,"):
                    quoted_other.append(tok)
                else:
                    item_start.setdefault(data[k + 1:], []).append(tok)
        arr = lambda xs: np.array(xs, dtype=np.int64)  # noqa: E731
        hit = _VocabIndex(by_prefix={k: arr(v) for k, v in by_prefix.items()}, slow=arr(slow), quoted=arr(quoted),
                          closers=arr(closers), quote_closers=arr(quote_closers), delimited=arr(delimited),
                          whole_items=arr(whole), zero_or_dot=arr(zero_or_dot), literal_bytes=arr(literal_bytes),
                          restarts={k: arr(v) for k, v in restarts.items()}, restarts_always=arr(restarts_always),
                          plain_exact={k: arr(v) for k, v in plain_exact.items()},
                          item_start={k: arr(v) for k, v in item_start.items()}, quoted_other=arr(quoted_other),
                          backslash=arr(backslash),
                          max_token_bytes=max((len(vocab.token_bytes(t)) for t in range(vocab.size)), default=0))
        vocab.cache["corral.unique_index"] = hit
    return hit


class UniqueArrays:
    """The value-constraint half of one CompiledGrammar (immutable after construction)."""

    def __init__(self, grammar, tables, states, vocab):
        self.states = states
        self.vocab = vocab
        # dotted positions right after an opening terminal -> the nonterminals of that array
        self.after_open: dict[int, frozenset] = {}
        self.int_at: dict[int, tuple] = {}  # of those, arrays of integer-only numeric items
        self.domain_at: dict[int, tuple] = {}  # of those, arrays over a finite set of strings
        self.search_at: dict[int, tuple] = {}  # of those, arrays of closed item languages: (ids, minItems)
        for term_name, nts in grammar.unique_arrays.items():
            sym = -1 - tables.terminal_index[term_name]
            ids = frozenset(tables._encode(n) for n in nts)
            for nt in ids:
                for first in tables.rules_for(nt):
                    if tables.next_sym[first] == sym:
                        self.after_open[first + 1] = ids
                        if term_name in grammar.unique_integer_items:
                            lo, hi, min_items = grammar.unique_integer_items[term_name]
                            self.int_at[first + 1] = (ids, lo, hi, int(min_items))
                        if term_name in grammar.unique_string_domains:
                            values, min_items = grammar.unique_string_domains[term_name]
                            self.domain_at[first + 1] = (ids, tuple(values), frozenset(values), int(min_items))
                        if term_name in grammar.unique_searched:
                            self.search_at[first + 1] = (ids, int(grammar.unique_searched[term_name]))
        self._open_memo: dict[int, Frame | None] = {}
        vocab_index(vocab)  # per-vocabulary (~1 s on Llama-3, once): at compile time, not in a mask
        self._unused: dict = {}  # (domain, used values) -> the values left, sorted and as a set
        self._value_candidates: dict = {}  # (value, item bytes or None) -> _spelling_candidates
        self._searches: dict = {}  # (state, frame) -> the search's answer
        self._restarts: dict = {}  # used values -> restart tokens whose new item may be spelled as one
        self.searches_given_up = 0  # searches that ran out of SEARCH_NODES (answered "alive")

    def _open(self, sid: int) -> Frame | None:
        """The frame of a '[' just read in state ``sid`` (None: no unique array opened)."""
        if sid in self._open_memo:
            return self._open_memo[sid]
        opened = [p for p in map(item_pos, self.states.states[sid].items) if p in self.after_open]
        blocked = frozenset().union(*(self.after_open[p] for p in opened))
        int_arrays = tuple(self.int_at[p] for p in opened if p in self.int_at)
        int_blocked = frozenset().union(*(a[0] for a in int_arrays))
        domains = tuple(self.domain_at[p] for p in opened if p in self.domain_at)
        searched = [self.search_at[p] for p in opened if p in self.search_at]
        frame = Frame(blocked, frozenset(), int_blocked=int_blocked, int_arrays=int_arrays, domains=domains,
                      searched=frozenset().union(*(e[0] for e in searched)),
                      searched_min=max((e[1] for e in searched), default=0)) if blocked else None
        self._open_memo[sid] = frame
        return frame

    def _fixed_integer(self, sid: int, item: bytes):
        """The value an integer item being read already has (None: still open). A lone "-" is
        fixed when the grammar takes no digit 1-9 after it (no negative integers: only -0)."""
        if item == b"-":
            step = self.states.step
            return None if any(step(sid, d) != DEAD for d in b"123456789") else ("number", Decimal(0))
        return _integer_value(item)

    def advance(self, sid: int, frames: tuple, data: bytes) -> tuple[int, tuple]:
        """Parser state and frames after ``data`` (DEAD when rejected, repeats included)."""
        step = self.states.step
        for b in data:
            if frames and b in _DELIMITERS:
                # a number closes at the delimiter after it, and that ']' may also complete the
                # array in the same step: remove a repeating array's parses before the step, or
                # their completion would already have reached the parents
                blocked = frozenset()
                for f in frames:
                    if f.kind == SCALAR and _value(f.item, SCALAR) in f.values:
                        blocked |= f.blocked
                if blocked:
                    sid = self.states.without(sid, blocked)
                    if sid == DEAD:
                        return DEAD, ()
            sid = step(sid, b)
            if sid == DEAD:
                return DEAD, ()
            if frames:
                kept = []
                blocked = frozenset()
                for f in frames:
                    nxt, value = _scan(f, b)
                    if value is not _NO_VALUE:
                        if value in f.values:
                            blocked |= f.blocked  # this array's unique parses end here
                            continue
                        nxt = None if nxt is None else replace(nxt, values=f.values | {value})
                    if nxt is not None:
                        kept.append(nxt)
                frames = tuple(kept)
                for f in frames:
                    if f.kind != SCALAR:
                        continue
                    if _literal_value(f.item) in f.values:
                        blocked |= f.blocked  # "t" after true: only true can follow
                    elif f.int_blocked and self._fixed_integer(sid, f.item) in f.values:
                        blocked |= f.int_blocked  # e.g. "0" after 0: only 0 can follow
                if blocked:
                    sid = self.states.without(sid, blocked)
                    if sid == DEAD:
                        return DEAD, ()
            if b == _LBRACKET:
                opened = self._open(sid)
                if opened is not None:
                    frames = frames + (opened,)
        # finite string domains: deadness only grows along a text, so the end of the data is
        # soon enough to remove an array that can no longer be completed
        blocked = frozenset()
        for f in frames:
            for domain in f.domains:
                if _domain_dead(f, domain):
                    blocked |= domain[0]
            for entry in f.int_arrays:
                if (entry[1] is not None or entry[2] is not None) and _integers_dead(f, entry):
                    blocked |= entry[0]
        if any(f.searched and f.values for f in frames):
            narrowed = []
            for f in frames:
                if f.searched and f.values:
                    if f.kind != BETWEEN:
                        f = _narrow(f)
                    if self._search_dead(sid, f):
                        blocked |= f.searched
                narrowed.append(f)
            frames = tuple(narrowed)
        if blocked:
            sid = self.states.without(sid, blocked)
            if sid == DEAD:
                return DEAD, ()
        return sid, frames

    def _search_dead(self, sid: int, f: Frame) -> bool:
        """No completion of the current item (of an array with a closed item language) is an
        unused value. A depth-first search over the parser's bytes that follows only prefixes some
        used value can still be spelled as: a byte that leaves none of them, or an item closed
        with an unused value, is a witness. Optional whitespace is skipped where another byte
        fits (it changes no value). Past SEARCH_NODES it answers "alive": the close check still
        rejects a repeat, at worst a later mask is empty."""
        if f.kind == BETWEEN:
            if not f.expect and len(f.values) >= f.searched_min:
                return False  # the array may close here
        elif not f.cands:
            return False  # no used value fits the item: any completion is new
        key = (sid, f)
        hit = self._searches.get(key)
        if hit is not None:
            return hit
        step, allowed_bytes = self.states.step, self.states.allowed_bytes
        values = f.values
        # (state, frame, used values the item may be spelled as, checkpoints of the item read at
        # the start: valid while that item goes on)
        stack = [(sid, f, f.cands if f.kind != BETWEEN else None, f.checkpoints if f.kind != BETWEEN else {})]
        nodes = 0
        dead = True
        while stack and dead:
            nodes += 1
            if nodes > SEARCH_NODES:
                self.searches_given_up += 1
                dead = False
                break
            s, g, cands, resume = stack.pop()
            allowed = np.flatnonzero(allowed_bytes(s)).tolist()
            in_text = g.kind == STRING or (g.kind == CONTAINER and g.in_string)
            if not in_text and any(b not in _WS for b in allowed):
                allowed = [b for b in allowed if b not in _WS]
            children = []
            for b in allowed:
                s2 = step(s, b)
                if s2 == DEAD:
                    continue
                g2, value = _scan(g, b)
                if value is not _NO_VALUE:
                    if value not in values:
                        dead = False
                        break
                    continue  # a repeat: that way is closed
                if g2 is None:
                    continue
                if g2.kind == BETWEEN:
                    children.append((s2, g2, None, {}))
                    continue
                data = _item_bytes(g2)
                if cands is None:
                    kept = tuple(u for u in values if _spelled_as(u, data))
                else:
                    kept = tuple(u for u in cands if _spelled_as(u, data, resume.get(u)))
                if not kept:
                    dead = False
                    break
                children.append((s2, g2, kept, resume))
            stack.extend(reversed(children))
        if len(self._searches) > 4096:
            self._searches.clear()
        self._searches[key] = dead
        return dead

    def _restart_candidates(self, values: frozenset, index) -> np.ndarray:
        """Tokens that may start an item after a comma which may be spelled as a used value (the
        rest start new values: never dead)."""
        hit = self._restarts.get(values)
        if hit is None:
            parts = [index.restarts_always]
            for start, ids in index.restarts.items():
                if any(_spelled_as(u, start) for u in values):
                    parts.append(ids)
            hit = np.concatenate(parts)
            if len(self._restarts) > 256:
                self._restarts.clear()
            self._restarts[values] = hit
        return hit

    def _spelling_walk(self, f: Frame) -> np.ndarray:
        """Tokens after which the item being read (or one a token starts) may still be spelled as
        a used value: a walk of the token trie that follows only such bytes. Tokens that close the
        item with a used value are included; those that close it with a new one and start another
        item after a comma are ``restarts`` in the index."""
        trie = self.vocab.trie
        node_byte, node_skip = trie.node_byte, trie.node_skip
        out = []
        # (node, frame after its bytes, used values it may be spelled as, only structural
        # whitespace so far: such tokens leave the values within reach as they are)
        stack = [(0, f, f.cands if f.kind != BETWEEN else None, True, f.checkpoints if f.kind != BETWEEN else {})]
        while stack:
            node, g, cands, blank, resume = stack.pop()
            child, end = node + 1, int(node_skip[node])
            hopeless = cands == ()  # no used value fits: only closing the item matters below
            while child < end:
                b = int(node_byte[child])
                if hopeless and not _closes(g, b):
                    child = int(node_skip[child])
                    continue
                g2, value = _scan(g, b)
                if value is not _NO_VALUE:
                    if value in g.values:
                        out.append(trie.subtree_tokens(child))
                    elif g2 is not None:  # a comma may follow with no item left to take
                        stack.append((child, replace(g2, values=g.values | {value}), None, False, {}))
                elif g2 is not None:
                    still_blank = blank and b in _WS and (g.kind == BETWEEN or (g.kind == CONTAINER and not g.in_string))
                    if g2.kind == BETWEEN:
                        if not still_blank:
                            out.append(trie.tokens_at(child))
                        stack.append((child, g2, None, still_blank, {}))
                    else:
                        data = _item_bytes(g2)
                        if cands is None:
                            kept = tuple(u for u in g.values if _spelled_as(u, data))
                        else:
                            kept = tuple(u for u in cands if _spelled_as(u, data, resume.get(u)))
                        if kept:
                            if not still_blank:
                                out.append(trie.tokens_at(child))
                            stack.append((child, g2, kept, still_blank, resume))
                child = int(node_skip[child])
        return np.concatenate(out).astype(np.int64) if out else np.zeros(0, dtype=np.int64)

    def _allowed(self, bits: np.ndarray) -> np.ndarray:
        return np.flatnonzero(np.unpackbits(bits.view(np.uint8), bitorder="little")[:self.vocab.size]).astype(np.int64)

    def _unused_values(self, f: Frame, domain) -> tuple[tuple, frozenset]:
        """(sorted, as a set) the domain's values not used yet by this array."""
        _, values, value_set, _ = domain
        used = frozenset(v for kind, v in f.values if kind == "string" and v in value_set)
        key = (id(domain), used)
        hit = self._unused.get(key)
        if hit is None or hit[0] is not domain:
            unused = tuple(u for u in values if u not in used)
            hit = (domain, unused, frozenset(unused))
            if len(self._unused) > 256:
                self._unused.clear()
            self._unused[key] = hit
        return hit[1], hit[2]

    def _string_domain_candidates(self, bits: np.ndarray, f: Frame, item: bytes | None, value_set,
                                  exhaustive: bool) -> np.ndarray:
        """The allowed tokens the string-domain filter must decide: those whose bytes may spell
        part of a used value (looked up by the used values' canonical byte prefixes), plus every
        token with a backslash or with more than content after its quote. Any other allowed token
        goes on spelling some value of the domain (the grammar allows it) but no used one, so an
        unused value stays reachable. ``exhaustive``: every allowed token (the reference)."""
        if exhaustive:
            return self._allowed(bits)
        index = vocab_index(self.vocab)
        chunks = [index.slow, index.backslash] if item is not None else [index.quoted_other]
        for v in {v for kind, v in f.values if kind == "string" and v in value_set}:
            hit = self._value_candidates.get((v, item))
            if hit is None:
                hit = self._value_candidates[(v, item)] = self._spelling_candidates(v, item, index)
            if len(hit):
                chunks.append(hit)
        cands = np.unique(np.concatenate(chunks)) if len(chunks) > 1 else chunks[0]
        allowed = (bits[cands >> 5] >> (cands & 31).astype(np.uint32)) & 1
        return cands[allowed.astype(bool)]

    def _spelling_candidates(self, v: str, item: bytes | None, index) -> np.ndarray:
        """Token ids that go on spelling ``v`` canonically from ``item`` (None: from between items,
        one quote after whitespace or commas): each prefix of the rest, and for an item, the rest
        closed by a quote; none when ``item`` does not start ``v``'s spelling. Cached per (value,
        item): along one array the used values are asked about at every position (a look-up per
        byte of each used value had cost ~300 µs a mask with a hundred values used)."""
        spelled = json.dumps(v, ensure_ascii=False)[1:-1].encode("utf-8")
        if item is None:
            rest, table, out = spelled, index.item_start, []
        else:
            if not spelled.startswith(item):
                return _NO_IDS
            rest, table = spelled[len(item):], index.plain_exact
            out = [index.by_prefix[rest]] if rest in index.by_prefix else []
        for i in range(1, min(len(rest), index.max_token_bytes) + 1):
            hit = table.get(rest[:i])
            if hit is not None:
                out.append(hit)
        if len(self._value_candidates) > 65536:
            self._value_candidates.clear()
        return np.concatenate(out) if out else _NO_IDS

    def _filter_string_domain(self, bits: np.ndarray, sid: int, f: Frame, exhaustive: bool = False) -> np.ndarray | None:
        """Exact filter of one array over a finite set of strings, deciding each allowed token from
        the decoded text it leaves the item with (a prefix of an unused value, or an unused value
        closed) instead of stepping it through the parser: an enum of 300 feature names with
        uniqueItems took ~10 ms per mask that way. Tokens it cannot decide alone (a second item
        inside the token) are stepped. None: the case is not covered (the caller checks every token)."""
        domain = f.domains[0]
        _, values, value_set, min_items = domain
        used = sum(1 for kind, v in f.values if kind == "string" and v in value_set)
        # the counts alone must not decide (an item start or end leaving too few values): then
        # every token stays with the general path
        if len(values) - used < max(min_items - used, 0) + 2:
            return None
        if f.kind == STRING:
            if f.escaped or _BACKSLASH in f.item:
                return None
            item = f.item
        elif f.kind == BETWEEN:
            item = None
        else:
            return None
        unused, unused_set = self._unused_values(f, domain)

        def fits(content: bytes) -> bool:
            prefix = _string_prefix(content)
            if prefix is None:
                return False
            text, pending = prefix
            for i in range(bisect.bisect_left(unused, text), len(unused)):
                u = unused[i]
                if not u.startswith(text):
                    break
                if not pending or (len(u) > len(text) and _can_spell(pending, u[len(text)])):
                    return True
            return False

        out, stepped = None, []
        token_bytes = self.vocab.token_bytes
        for tok in self._string_domain_candidates(bits, f, item, value_set, exhaustive).tolist():
            data = token_bytes(tok)
            if item is None:  # between items: whitespace, a comma, the closing bracket, or an item start
                k = data.find(b'"')
                if k < 0:
                    continue  # no item starts: nothing to check (enough values are left)
                if data[:k].strip(b" \t\n\r,"):
                    stepped.append(tok)
                    continue
                content = data[k + 1:]
            else:
                content = item + data
            end = _closing_quote(content)
            if end is None:
                good = fits(content)
            else:
                tail = content[end + 1:]
                rest = tail.strip(b" \t\n\r")
                if b'"' in tail or (rest and rest != b"," and rest[:1] != b"]"):
                    stepped.append(tok)  # another item begins inside this token
                    continue
                prefix = _string_prefix(content[:end])
                good = prefix is not None and not prefix[1] and prefix[0] in unused_set
            if not good:
                if out is None:
                    out = bits.copy()
                out[tok >> 5] &= ~np.uint32(1 << (tok & 31))
        frames = (f,)
        for tok in stepped:
            if self.advance(sid, frames, token_bytes(tok))[0] == DEAD:
                if out is None:
                    out = bits.copy()
                out[tok >> 5] &= ~np.uint32(1 << (tok & 31))
        return bits if out is None else out

    def filter_mask(self, bits: np.ndarray, sid: int, frames: tuple) -> np.ndarray:
        """``bits`` without the tokens that would close a repeated item (a copy when any)."""
        if not frames:
            return bits
        if len(frames) == 1 and len(frames[0].domains) == 1 and frames[0].values and \
                not frames[0].int_arrays and not frames[0].int_blocked and frames[0].kind in (STRING, BETWEEN):
            fast = self._filter_string_domain(bits, sid, frames[0])
            if fast is not None:
                return fast
        index = vocab_index(self.vocab)
        chunks = []
        for f in frames:
            if f.searched and f.values:
                chunks.append(self._restart_candidates(f.values | _closing_values(f), index))
                chunks.append(self._spelling_walk(f))
                if f.searched == f.blocked:
                    continue  # no other kind of array shares this frame
            if f.domains and f.values:
                if f.kind == STRING and _used_fits(f):
                    # the next bytes may narrow the item to used values only: check every token
                    chunks.append(self._allowed(bits))
                elif f.kind == STRING:  # closing the item may leave too few values for the rest
                    chunks.append(index.quoted)
                elif f.kind == BETWEEN:  # a comma or an item's start may leave too few values
                    chunks.append(index.quoted)
                    chunks.append(index.delimited)
            if f.kind == STRING:
                chunks.append(index.slow)
                try:
                    current = None if f.escaped else json.loads(b'"' + f.item + b'"')
                except ValueError:
                    current = None
                if current is None:  # inside an escape or a UTF-8 sequence: every quote token
                    chunks.append(index.quoted)
                    continue
                for kind, v in f.values:
                    if kind == "string" and v.startswith(current):
                        rest = json.dumps(v[len(current):], ensure_ascii=False)[1:-1].encode("utf-8")
                        hit = index.by_prefix.get(rest)
                        if hit is not None:
                            chunks.append(hit)
            elif f.kind == SCALAR:  # a number or literal closes at the delimiter after it
                chunks.append(index.delimited)
                if f.values and any(e[1] is not None or e[2] is not None for e in f.int_arrays):
                    chunks.append(self._allowed(bits))  # a digit may narrow it to used integers
                if f.int_blocked:
                    chunks.append(index.zero_or_dot)
                if f.values and _literal_value(f.item) is not None:
                    chunks.append(index.literal_bytes)
            elif f.kind == CONTAINER:  # closes at a bracket, outside any string of it
                chunks.append(index.quote_closers if f.in_string else index.closers)
            else:  # between items: only a token holding a whole item can complete one
                chunks.append(index.whole_items)
                if f.values and any(e[1] is not None or e[2] is not None for e in f.int_arrays):
                    chunks.append(self._allowed(bits))
                if f.int_blocked:
                    chunks.append(index.zero_or_dot)
                if f.values:  # a literal's first letters already fix it
                    chunks.append(index.literal_bytes)
        cands = np.unique(np.concatenate(chunks)) if len(chunks) > 1 else chunks[0]
        if not len(cands):
            return bits
        allowed = (bits[cands >> 5] >> (cands & 31).astype(np.uint32)) & 1
        out = None
        for tok in cands[allowed.astype(bool)].tolist():
            if self.advance(sid, frames, self.vocab.token_bytes(tok))[0] == DEAD:
                if out is None:
                    out = bits.copy()
                out[tok >> 5] &= ~np.uint32(1 << (tok & 31))
        return bits if out is None else out
