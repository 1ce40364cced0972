"""JSON string encoding of code-point regexes, and exact regexes for the string ``format``s.

A JSON Schema string constraint (length, pattern, format, enum) speaks about the *decoded* string;
the grammar sees its JSON spelling. ``encode`` maps a regex over decoded code points to the regex of
every JSON spelling of those strings: each code point may be written raw (when JSON allows it raw),
as a short escape (``\\n``, ``\\"``, ``\\/``...), as ``\\uXXXX`` (hex digits in either case), or, above
U+FFFF, as a UTF-16 surrogate pair of escapes. Lone surrogate escapes are never accepted (they do
not decode to a Unicode scalar value). The mapping is a homomorphism with unique decoding, so it
preserves intersections and complements done on the decoded side.
"""
from __future__ import annotations

from functools import lru_cache

from corral.grammars import regex_ast as rx

RAW_FORBIDDEN = ((0, 0x1F), (0x22, 0x22), (0x5C, 0x5C))
SHORT_ESCAPES = {0x22: '"', 0x5C: "\\", 0x2F: "/", 0x08: "b", 0x0C: "f", 0x0A: "n", 0x0D: "r", 0x09: "t"}
HEX_DIGITS = "0123456789abcdef"


def _hex_digit_class(lo: int, hi: int) -> rx.Regex:
    ranges = []
    for v in range(lo, hi + 1):
        c = HEX_DIGITS[v]
        ranges.append((ord(c), ord(c)))
        if c.isalpha():
            ranges.append((ord(c.upper()), ord(c.upper())))
    return rx.chars(ranges)


ANY_HEX = _hex_digit_class(0, 15)


def hex_fixed_range(lo: int, hi: int, width: int) -> rx.Regex:
    """Case-insensitive hex strings of exactly ``width`` digits with value in [lo, hi]."""
    if lo > hi:
        return rx.NOTHING
    if width == 0:
        return rx.EMPTY
    unit = 16 ** (width - 1)
    a, b = lo // unit, hi // unit
    if a == b:
        return rx.seq(_hex_digit_class(a, a), hex_fixed_range(lo % unit, hi % unit, width - 1))
    parts = []
    low_digit, high_digit = a, b
    if lo % unit:
        parts.append(rx.seq(_hex_digit_class(a, a), hex_fixed_range(lo % unit, unit - 1, width - 1)))
        low_digit = a + 1
    tail = None
    if hi % unit != unit - 1:
        tail = rx.seq(_hex_digit_class(b, b), hex_fixed_range(0, hi % unit, width - 1))
        high_digit = b - 1
    if low_digit <= high_digit:
        parts.append(rx.seq(_hex_digit_class(low_digit, high_digit), rx.repeat(ANY_HEX, width - 1, width - 1)))
    if tail is not None:
        parts.append(tail)
    return rx.alt(*parts)


def _u_escape(lo: int, hi: int) -> rx.Regex:
    return rx.seq(rx.literal("\\u"), hex_fixed_range(lo, hi, 4))


def _intersect_ranges(ranges, lo, hi):
    return [(max(a, lo), min(b, hi)) for a, b in ranges if a <= hi and b >= lo]


@lru_cache(maxsize=65536)
def encode_class(ranges: tuple[tuple[int, int], ...]) -> rx.Regex:
    """Every JSON spelling of one code point from ``ranges``."""
    parts: list[rx.Regex] = []
    raw = rx.chars(ranges)
    if isinstance(raw, rx.Chars):
        allowed = rx.negate(rx.chars(RAW_FORBIDDEN))
        raw_ranges = [r for a, b in allowed.ranges for r in _intersect_ranges(ranges, a, b)]
        if raw_ranges:
            parts.append(rx.chars(raw_ranges))
    short = [c for cp, c in SHORT_ESCAPES.items() if any(a <= cp <= b for a, b in ranges)]
    if short:
        parts.append(rx.seq(rx.literal("\\"), rx.char_set("".join(short))))
    for a, b in _intersect_ranges(ranges, 0, 0xFFFF):
        # surrogates are already absent from normalized ranges
        parts.append(_u_escape(a, b))
    for a, b in _intersect_ranges(ranges, 0x10000, 0x10FFFF):
        va, vb = a - 0x10000, b - 0x10000
        ha, hb = 0xD800 + (va >> 10), 0xD800 + (vb >> 10)
        la, lb = 0xDC00 + (va & 0x3FF), 0xDC00 + (vb & 0x3FF)
        if ha == hb:
            parts.append(rx.seq(_u_escape(ha, ha), _u_escape(la, lb)))
            continue
        parts.append(rx.seq(_u_escape(ha, ha), _u_escape(la, 0xDFFF)))
        if ha + 1 <= hb - 1:
            parts.append(rx.seq(_u_escape(ha + 1, hb - 1), _u_escape(0xDC00, 0xDFFF)))
        parts.append(rx.seq(_u_escape(hb, hb), _u_escape(0xDC00, lb)))
    return rx.alt(*parts) if parts else rx.NOTHING


def _spell(node: rx.Regex, spell_class) -> rx.Regex:
    """``node`` (a regex over code points) with every class replaced by ``spell_class(ranges)``."""
    if isinstance(node, rx.Chars):
        return spell_class(node.ranges)
    if isinstance(node, rx.Seq):
        return rx.seq(*(_spell(i, spell_class) for i in node.items))
    if isinstance(node, rx.Alt):
        return rx.alt(*(_spell(i, spell_class) for i in node.items))
    if isinstance(node, rx.Repeat):
        return rx.repeat(_spell(node.item, spell_class), node.min, node.max)
    raise TypeError(node)


def encode(node: rx.Regex) -> rx.Regex:
    """The JSON-string-body spellings of the strings matched by ``node`` (a regex over code points)."""
    return _spell(node, encode_class)


_RAW_ALLOWED = rx.negate(rx.chars(RAW_FORBIDDEN)).ranges

# json.dumps(..., ensure_ascii=False)'s escapes: the short ones, else \u00xx (lowercase hex)
_CANONICAL_ESCAPES = {0x22: '\\"', 0x5C: "\\\\", 0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}


def canonical_escape(cp: int) -> str:
    """How ``json.dumps(..., ensure_ascii=False)`` writes a code point JSON may not write raw."""
    return _CANONICAL_ESCAPES.get(cp) or "\\u%04x" % cp


@lru_cache(maxsize=65536)
def encode_class_minimal(ranges: tuple[tuple[int, int], ...]) -> rx.Regex:
    """The one spelling ``json.dumps(..., ensure_ascii=False)`` writes of each code point from
    ``ranges``: raw where JSON allows it, else its canonical escape (the ``escapes="minimal"``
    option: a generation default, so that a model cannot drift into ``\\uXXXX`` spellings)."""
    parts: list[rx.Regex] = []
    raw_ranges = [r for a, b in _RAW_ALLOWED for r in _intersect_ranges(ranges, a, b)]
    if raw_ranges:
        parts.append(rx.chars(raw_ranges))
    for a, b in RAW_FORBIDDEN:
        for lo, hi in _intersect_ranges(ranges, a, b):
            parts.extend(rx.literal(canonical_escape(cp)) for cp in range(lo, hi + 1))
    return rx.alt(*parts) if parts else rx.NOTHING


def encode_minimal(node: rx.Regex) -> rx.Regex:
    """``encode`` with one spelling per string (``encode_class_minimal``)."""
    return _spell(node, encode_class_minimal)


def encode_for(quote, node: rx.Regex) -> rx.Regex:
    """A string body's spellings by the compiler's quote mode: True every JSON spelling, "raw" the
    raw one (ASCII formats), "minimal" json.dumps' (``escapes="minimal"``), False none (a key's
    decoded text, not yet spelled)."""
    if quote == "raw":
        return encode_raw(node)
    if quote == "minimal":
        return encode_minimal(node)
    return encode(node) if quote else node


_ENCODED_RAW: dict = {}  # node -> its raw spelling; format regexes are shared objects (lru_cache)
ENCODED_RAW_ENTRIES = 1 << 15


def encode_raw(node: rx.Regex) -> rx.Regex:
    """Only the raw spelling (no escapes) of ``node``'s strings: used for ``format`` values, which are
    ASCII without quotes/backslashes, so every serializer writes them raw. Memoized per node: a
    schema quotes the same format regex once per use, and rebuilding date-time's tree (~20 ms)
    each time was 11 of 90 s in MaskBench's 129 compiles of 0.25-1 s."""
    hit = _ENCODED_RAW.get(node)
    if hit is None:
        hit = _encode_raw(node)
        if len(_ENCODED_RAW) >= ENCODED_RAW_ENTRIES:
            _ENCODED_RAW.clear()
        _ENCODED_RAW[node] = hit
    return hit


def _encode_raw(node: rx.Regex) -> rx.Regex:
    if isinstance(node, rx.Chars):
        return rx.chars([r for a, b in _RAW_ALLOWED for r in _intersect_ranges(node.ranges, a, b)])
    if isinstance(node, rx.Seq):
        return rx.seq(*(encode_raw(i) for i in node.items))
    if isinstance(node, rx.Alt):
        return rx.alt(*(encode_raw(i) for i in node.items))
    if isinstance(node, rx.Repeat):
        return rx.repeat(encode_raw(node.item), node.min, node.max)
    raise TypeError(node)


ANY_CHAR = rx.any_char()


def quoted(body: rx.Regex) -> rx.Regex:
    """A whole JSON string token: quotes around the encoded body of a decoded-string regex."""
    return rx.seq(rx.literal('"'), encode(body), rx.literal('"'))


def literal_string(text: str) -> rx.Regex:
    return quoted(rx.literal(text))


# ---------------------------------------------------------------- formats (over decoded code points)

D = rx.char_range("0", "9")


def _d(n: int) -> rx.Regex:
    return rx.repeat(D, n, n)


def _lit(s: str) -> rx.Regex:
    return rx.literal(s)


def _ci(s: str) -> rx.Regex:
    return rx.seq(*(rx.char_set(c.lower() + c.upper()) for c in s))


def _two_digit(lo: int, hi: int) -> rx.Regex:
    return rx.alt(*(_lit("%02d" % v) for v in range(lo, hi + 1)))


@lru_cache(maxsize=None)
def full_date() -> rx.Regex:
    """RFC 3339 full-date with the day range of each month; Feb 29 only in leap years."""
    year = _d(4)
    m31 = rx.seq(rx.alt(*(_lit(m) for m in ("01", "03", "05", "07", "08", "10", "12"))), _lit("-"), _two_digit(1, 31))
    m30 = rx.seq(rx.alt(*(_lit(m) for m in ("04", "06", "09", "11"))), _lit("-"), _two_digit(1, 30))
    feb = rx.seq(_lit("02-"), _two_digit(1, 28))
    leap_tail = rx.alt(*(_lit("%02d" % v) for v in range(4, 100, 4)))
    leap_century = rx.alt(*(_lit("%02d00" % v) for v in range(0, 100, 4)))
    leap_year = rx.alt(rx.seq(_d(2), leap_tail), leap_century)
    return rx.alt(rx.seq(year, _lit("-"), rx.alt(m31, m30, feb)), rx.seq(leap_year, _lit("-02-29")))


@lru_cache(maxsize=None)
def full_time_utc_leap() -> rx.Regex:
    """RFC 3339 full-time, with leap seconds accepted only when written in UTC (23:59:60 with Z or
    +/-00:00). The exact rule (any offset whose UTC instant is 23:59:60) needs a table of 1440 local
    times; that is ``full_time`` (option ``exact_leap_seconds=True``)."""
    frac = rx.optional(rx.seq(_lit("."), rx.plus(D)))
    z = rx.char_set("zZ")
    hour, minute = _two_digit(0, 23), _two_digit(0, 59)
    offset = rx.alt(z, rx.seq(rx.char_set("+-"), hour, _lit(":"), minute))
    normal = rx.seq(hour, _lit(":"), minute, _lit(":"), _two_digit(0, 59), frac, offset)
    leap = rx.seq(_lit("23:59:60"), frac, rx.alt(z, _lit("+00:00"), _lit("-00:00")))
    return rx.alt(normal, leap)


@lru_cache(maxsize=None)
def date_time_utc_leap() -> rx.Regex:
    return rx.seq(full_date(), rx.char_set("tT"), full_time_utc_leap())


@lru_cache(maxsize=None)
def full_time() -> rx.Regex:
    """RFC 3339 full-time; a leap second (:60) only where the instant is 23:59:60 UTC."""
    frac = rx.optional(rx.seq(_lit("."), rx.plus(D)))
    z = rx.char_set("zZ")
    hour, minute = _two_digit(0, 23), _two_digit(0, 59)
    offset = rx.alt(z, rx.seq(rx.char_set("+-"), hour, _lit(":"), minute))
    normal = rx.seq(hour, _lit(":"), minute, _lit(":"), _two_digit(0, 59), frac, offset)
    # factored by local hour, then local minute; built as raw Alt nodes (all distinct) for speed
    by_hour = []
    for local_hour in range(24):
        by_minute = []
        for local_minute in range(60):
            local = local_hour * 60 + local_minute
            delta = (local - 1439) % 1440  # local = utc + offset (mod a day)
            if delta == 0:
                offs = rx.alt(z, _lit("+00:00"), _lit("-00:00"))
            else:
                offs = rx.Alt((_lit("+%02d:%02d" % divmod(delta, 60)), _lit("-%02d:%02d" % divmod(1440 - delta, 60))))
            by_minute.append(rx.seq(_lit("%02d:60" % local_minute), frac, offs))
        by_hour.append(rx.seq(_lit("%02d:" % local_hour), rx.Alt(tuple(by_minute))))
    leap = [rx.Alt(tuple(by_hour))]
    return rx.alt(normal, *leap)


@lru_cache(maxsize=None)
def date_time() -> rx.Regex:
    return rx.seq(full_date(), rx.char_set("tT"), full_time())


@lru_cache(maxsize=None)
def duration() -> rx.Regex:
    """RFC 3339 appendix A ISO 8601 duration."""
    def unit(c):
        return rx.seq(rx.plus(D), _lit(c))
    second = unit("S")
    minute = rx.seq(unit("M"), rx.optional(second))
    hour = rx.seq(unit("H"), rx.optional(minute))
    time = rx.seq(_lit("T"), rx.alt(hour, minute, second))
    day = unit("D")
    month = rx.seq(unit("M"), rx.optional(day))
    year = rx.seq(unit("Y"), rx.optional(month))
    date = rx.seq(rx.alt(day, month, year), rx.optional(time))
    week = unit("W")
    return rx.seq(_lit("P"), rx.alt(date, time, week))


DEC_OCTET = rx.alt(rx.seq(_lit("25"), rx.char_range("0", "5")),
                   rx.seq(_lit("2"), rx.char_range("0", "4"), D),
                   rx.seq(_lit("1"), D, D), rx.seq(rx.char_range("1", "9"), D), D)
IPV4 = rx.seq(DEC_OCTET, rx.repeat(rx.seq(_lit("."), DEC_OCTET), 3, 3))


@lru_cache(maxsize=None)
def ipv6() -> rx.Regex:
    """RFC 3986 IPv6address (all nine compressed forms, optional trailing IPv4)."""
    h16 = rx.repeat(ANY_HEX, 1, 4)
    h16c = rx.seq(h16, _lit(":"))
    ls32 = rx.alt(rx.seq(h16, _lit(":"), h16), IPV4)

    def rep(n):
        return rx.repeat(h16c, n, n)

    def upto(n):  # [ *n( h16 ":" ) h16 ]
        return rx.optional(rx.seq(rx.repeat(h16c, 0, n), h16)) if n >= 0 else rx.EMPTY

    forms = [
        rx.seq(rep(6), ls32),
        rx.seq(_lit("::"), rep(5), ls32),
        rx.seq(rx.optional(h16), _lit("::"), rep(4), ls32),
        rx.seq(upto(1), _lit("::"), rep(3), ls32),
        rx.seq(upto(2), _lit("::"), rep(2), ls32),
        rx.seq(upto(3), _lit("::"), h16c, ls32),
        rx.seq(upto(4), _lit("::"), ls32),
        rx.seq(upto(5), _lit("::"), h16),
        rx.seq(upto(6), _lit("::")),
    ]
    return rx.alt(*forms)


UUID = rx.seq(rx.repeat(ANY_HEX, 8, 8), _lit("-"), rx.repeat(ANY_HEX, 4, 4), _lit("-"), rx.repeat(ANY_HEX, 4, 4),
              _lit("-"), rx.repeat(ANY_HEX, 4, 4), _lit("-"), rx.repeat(ANY_HEX, 12, 12))


def _cs(text: str) -> rx.Regex:
    return rx.char_set(text)


ALPHA = rx.chars([(0x41, 0x5A), (0x61, 0x7A)])
ALNUM = rx.chars([(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)])
UNRESERVED = rx.union_chars(ALNUM, _cs("-._~"))
SUB_DELIMS = _cs("!$&'()*+,;=")
PCT = rx.seq(_lit("%"), ANY_HEX, ANY_HEX)


# RFC 3987 section 2.2: the non-ASCII code points an IRI may spell raw (planes 1 to 14 without
# their last two, non-character, code points), and the private-use ones allowed in a query only
UCSCHAR = rx.chars([(0xA0, 0xD7FF), (0xF900, 0xFDCF), (0xFDF0, 0xFFEF)]
                   + [(plane << 16, (plane << 16) + 0xFFFD) for plane in range(1, 14)] + [(0xE1000, 0xEFFFD)])
IPRIVATE = rx.chars([(0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD)])


def _resource_identifier(unreserved: rx.Regex, query_only: rx.Regex | None):
    """RFC 3986 appendix A transcribed (the grammar is regular), parameterized as RFC 3987 does:
    an IRI widens `unreserved` by ucschar and lets a query hold private-use code points."""
    pchar = rx.alt(rx.union_chars(unreserved, SUB_DELIMS, _cs(":@")), PCT)
    scheme = rx.seq(ALPHA, rx.star(rx.union_chars(ALNUM, _cs("+-."))))
    userinfo = rx.star(rx.alt(rx.union_chars(unreserved, SUB_DELIMS, _cs(":")), PCT))
    # IP-literal and IPvFuture stay ASCII in RFC 3987 too; ABNF literals like "v" ignore case
    ipvfuture = rx.seq(_cs("vV"), rx.plus(ANY_HEX), _lit("."), rx.plus(rx.union_chars(UNRESERVED, SUB_DELIMS, _cs(":"))))
    ip_literal = rx.seq(_lit("["), rx.alt(ipv6(), ipvfuture), _lit("]"))
    reg_name = rx.star(rx.alt(rx.union_chars(unreserved, SUB_DELIMS), PCT))
    host = rx.alt(ip_literal, reg_name)  # IPv4address is a subset of reg-name
    authority = rx.seq(rx.optional(rx.seq(userinfo, _lit("@"))), host, rx.optional(rx.seq(_lit(":"), rx.star(D))))
    segment = rx.star(pchar)
    segment_nz = rx.plus(pchar)
    segment_nz_nc = rx.plus(rx.alt(rx.union_chars(unreserved, SUB_DELIMS, _cs("@")), PCT))
    path_abempty = rx.star(rx.seq(_lit("/"), segment))
    path_absolute = rx.seq(_lit("/"), rx.optional(rx.seq(segment_nz, rx.star(rx.seq(_lit("/"), segment)))))
    path_rootless = rx.seq(segment_nz, rx.star(rx.seq(_lit("/"), segment)))
    path_noscheme = rx.seq(segment_nz_nc, rx.star(rx.seq(_lit("/"), segment)))
    fragment = rx.star(rx.alt(pchar, _cs("/?")))
    query = fragment if query_only is None else rx.star(rx.alt(pchar, _cs("/?"), query_only))
    tail = rx.seq(rx.optional(rx.seq(_lit("?"), query)), rx.optional(rx.seq(_lit("#"), fragment)))
    hier = rx.alt(rx.seq(_lit("//"), authority, path_abempty), path_absolute, path_rootless, rx.EMPTY)
    absolute = rx.seq(scheme, _lit(":"), hier, tail)
    relative = rx.seq(rx.alt(rx.seq(_lit("//"), authority, path_abempty), path_absolute, path_noscheme, rx.EMPTY), tail)
    return absolute, rx.alt(absolute, relative)


@lru_cache(maxsize=None)
def _uri_parts():
    return _resource_identifier(UNRESERVED, None)


@lru_cache(maxsize=None)
def _iri_parts():
    return _resource_identifier(rx.union_chars(UNRESERVED, UCSCHAR), IPRIVATE)


@lru_cache(maxsize=None)
def email() -> rx.Regex:
    """RFC 5321 Mailbox syntax (section 4.1.2): dot-string or quoted local part; domain names or
    address literals (IPv4, "IPv6:" IPv6; ABNF string literals ignore case). The size limits of section 4.5.3 are not part of the syntax."""
    atext = rx.union_chars(ALNUM, _cs("!#$%&'*+/=?^_`{|}~-"))
    atom = rx.plus(atext)
    dot_string = rx.seq(atom, rx.star(rx.seq(_lit("."), atom)))
    qtext = rx.chars([(0x20, 0x21), (0x23, 0x5B), (0x5D, 0x7E)])
    quoted = rx.seq(_lit('"'), rx.star(rx.alt(qtext, rx.seq(_lit("\\"), rx.chars([(0x20, 0x7E)])))), _lit('"'))
    ldh = rx.union_chars(ALNUM, _cs("-"))
    sub_domain = rx.seq(ALNUM, rx.optional(rx.seq(rx.star(ldh), ALNUM)))
    domain = rx.seq(sub_domain, rx.star(rx.seq(_lit("."), sub_domain)))
    literal = rx.seq(_lit("["), rx.alt(IPV4, rx.seq(_cs("iI"), _cs("pP"), _cs("vV"), _lit("6:"), ipv6())), _lit("]"))
    return rx.seq(rx.alt(dot_string, quoted), _lit("@"), rx.alt(domain, literal))


@lru_cache(maxsize=None)
def uri_template() -> rx.Regex:
    """RFC 6570 section 2 (URI Template, any level; the grammar is regular): literals and
    ``{`` [operator] varspec *("," varspec) ``}`` expressions, varspec a dotted name of letters,
    digits, ``_`` and pct-encoded triplets with a ``:`` prefix length of 1-9999 or ``*``. Literals
    are every character but controls, space, ``"``, ``%`` outside a pct-encoded triplet,
    ``<>\\^`{|}`` and non-ASCII outside ucschar/iprivate. The apostrophe is a literal: the RFC's
    ABNF leaves %x27 out, the Test Suite ("an apostrophe in a literal is valid") lets it in, and a
    rejected valid instance is the error we never make. Operators include the five the RFC
    reserves for extensions (``= , ! @ |``): its ABNF admits them."""
    literal = rx.alt(rx.union_chars(rx.chars([(0x21, 0x21), (0x23, 0x24), (0x26, 0x3B), (0x3D, 0x3D),
                                               (0x3F, 0x5B), (0x5D, 0x5D), (0x5F, 0x5F), (0x61, 0x7A),
                                               (0x7E, 0x7E)]), UCSCHAR, IPRIVATE), PCT)
    varchar = rx.alt(rx.union_chars(ALNUM, _cs("_")), PCT)
    varname = rx.seq(varchar, rx.star(rx.seq(rx.optional(_lit(".")), varchar)))
    max_length = rx.seq(rx.char_range("1", "9"), rx.repeat(D, 0, 3))
    varspec = rx.seq(varname, rx.optional(rx.alt(rx.seq(_lit(":"), max_length), _lit("*"))))
    expression = rx.seq(_lit("{"), rx.optional(_cs("+#./;?&=,!@|")), varspec,
                        rx.star(rx.seq(_lit(","), varspec)), _lit("}"))
    return rx.star(rx.alt(literal, expression))


def json_pointer() -> rx.Regex:
    """RFC 6901: ("/" (unescaped | "~0" | "~1")*)*; over all code points."""
    unescaped = rx.negate(_cs("~/"))
    token = rx.star(rx.alt(unescaped, rx.seq(_lit("~"), _cs("01"))))
    return rx.star(rx.seq(_lit("/"), token))


def relative_json_pointer() -> rx.Regex:
    nonneg = rx.alt(_lit("0"), rx.seq(rx.char_range("1", "9"), rx.star(D)))
    return rx.seq(nonneg, rx.alt(_lit("#"), json_pointer()))


# formats whose language is printable ASCII without quote/backslash: spelled raw in JSON
ASCII_FORMATS = {"date", "time", "date-time", "duration", "ipv4", "ipv6", "uuid", "uri", "uri-reference"}


def _format_table():
    return {
        "date": full_date,
        "time": full_time,
        "date-time": date_time,
        "duration": duration,
        "ipv4": lambda: IPV4,
        "ipv6": ipv6,
        "uuid": lambda: UUID,
        "uri": lambda: _uri_parts()[0],
        "uri-reference": lambda: _uri_parts()[1],
        "iri": lambda: _iri_parts()[0],
        "iri-reference": lambda: _iri_parts()[1],
        "email": email,
        "json-pointer": json_pointer,
        "relative-json-pointer": relative_json_pointer,
        "uri-template": uri_template,
    }


HOSTNAME_MAX_LENGTH = 253  # RFC 1034 3.1: 255 octets on the wire, so 253 characters without the root dot


@lru_cache(maxsize=None)
def hostname_rfc1034() -> rx.Regex:
    """``hostname`` as drafts 4 and 6 define it: RFC 1034 section 3.1 (labels of letters, digits and
    hyphens, 1-63 long, not beginning or ending with a hyphen; RFC 1123 lets them begin with a
    digit), without a trailing dot; the caller adds the 253-character bound. From draft 7 on the
    format also admits IDNA A-labels (``xn--``) only when their Punycode decodes to a valid U-label,
    which no automaton decides: that stays unsupported."""
    alnum = rx.chars([(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)])
    ldh = rx.chars([(0x2D, 0x2D), (0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)])
    label = rx.seq(alnum, rx.repeat(rx.seq(rx.repeat(ldh, 0, 61), alnum), 0, 1))
    return rx.seq(label, rx.star(rx.seq(_lit("."), label)))


FORMATS = _format_table()
# Formats every draft defines that we do not (yet) compile exactly: reported, never ignored.
KNOWN_UNSUPPORTED_FORMATS = {
    "idn-email", "hostname", "idn-hostname", "regex",
}


def format_regex(name: str, exact_leap_seconds: bool = False) -> rx.Regex | None:
    """The decoded-string regex of a format, or None when the format is not compiled exactly."""
    if not exact_leap_seconds and name in ("time", "date-time"):
        return full_time_utc_leap() if name == "time" else date_time_utc_leap()
    f = FORMATS.get(name)
    return f() if f else None
