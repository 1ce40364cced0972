"""Exact regexes for JSON numbers: digit automata for integer and decimal bounds, and number literals.

Spelling policy (see docs/json_schema.md): a number is accepted in plain decimal notation
``-?(0|[1-9][0-9]*)(\\.[0-9]+)?``; exponent notation is accepted only when the bounds depend on the
sign alone (no bound, or bounds at 0), because a digit automaton cannot compare ``m·10^e`` with an
arbitrary bound. Values are compared exactly (``decimal.Decimal``), never through floats.
"""
from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from corral.grammars import regex_ast as rx

DIGIT = rx.char_range("0", "9")
NONZERO = rx.char_range("1", "9")
DIGITS = rx.plus(DIGIT)
UINT = rx.alt(rx.literal("0"), rx.seq(NONZERO, rx.star(DIGIT)))  # canonical unsigned integer
EXPONENT = rx.seq(rx.char_set("eE"), rx.optional(rx.char_set("+-")), DIGITS)
POS_EXPONENT = rx.seq(rx.char_set("eE"), rx.optional(rx.char_set("+")), DIGITS)
ZERO_FRACTION = rx.optional(rx.seq(rx.literal("."), rx.plus(rx.literal("0"))))


def _digit_class(lo: int, hi: int) -> rx.Regex:
    return rx.chars([(ord("0") + lo, ord("0") + hi)])


def fixed_width_range(lo: str, hi: str) -> rx.Regex:
    """Digit strings of exactly len(lo) == len(hi) digits whose value is in [lo, hi] (leading zeros allowed)."""
    assert len(lo) == len(hi)
    n = len(lo)
    if n == 0:
        return rx.EMPTY
    if lo > hi:
        return rx.NOTHING
    if lo == "0" * n and hi == "9" * n:
        return rx.repeat(DIGIT, n, n)
    a, b = int(lo[0]), int(hi[0])
    if a == b:
        return rx.seq(_digit_class(a, a), fixed_width_range(lo[1:], hi[1:]))
    rest = n - 1
    parts = []
    if lo[1:] == "0" * rest:
        low_digit = a  # the whole block starting with a is inside
    else:
        parts.append(rx.seq(_digit_class(a, a), fixed_width_range(lo[1:], "9" * rest)))
        low_digit = a + 1
    if hi[1:] == "9" * rest:
        high_digit = b
        tail = None
    else:
        high_digit = b - 1
        tail = rx.seq(_digit_class(b, b), fixed_width_range("0" * rest, hi[1:]))
    if low_digit <= high_digit:
        parts.append(rx.seq(_digit_class(low_digit, high_digit), rx.repeat(DIGIT, rest, rest)))
    if tail is not None:
        parts.append(tail)
    return rx.alt(*parts)


def uint_range(lo: int, hi: int | None) -> rx.Regex:
    """Canonical (no leading zero) unsigned integers in [lo, hi]; hi=None is unbounded."""
    lo = max(lo, 0)
    if hi is not None and hi < lo:
        return rx.NOTHING
    parts = []
    if lo == 0:
        parts.append(rx.literal("0"))
        lo = 1
        if hi is not None and hi < 1:
            return rx.alt(*parts)
    lo_s = str(lo)
    max_len = len(str(hi)) if hi is not None else len(lo_s)
    full_lengths = []  # lengths where every canonical integer is inside: one bounded repeat for all
    for n in range(len(lo_s), max_len + 1):
        a = lo_s if n == len(lo_s) else "1" + "0" * (n - 1)
        b = str(hi) if (hi is not None and n == len(str(hi))) else "9" * n
        if a == "1" + "0" * (n - 1) and b == "9" * n:
            full_lengths.append(n)
        elif int(a) <= int(b):
            parts.append(fixed_width_range(a, b))
    if full_lengths:  # consecutive by construction; one repeat keeps a 309-digit bound linear, not quadratic
        parts.append(rx.seq(NONZERO, rx.repeat(DIGIT, full_lengths[0] - 1, full_lengths[-1] - 1)))
    if hi is None:
        # every canonical integer longer than lo
        parts.append(rx.seq(NONZERO, rx.repeat(DIGIT, len(lo_s), None)))
    return rx.alt(*parts) if parts else rx.NOTHING


def fraction_between(lo: str | None, lo_strict: bool, hi: str | None, hi_strict: bool) -> rx.Regex:
    """Non-empty digit strings F with 0.lo (<|<=) 0.F (<|<=) 0.hi; None means no bound on that side.

    ``lo``/``hi`` are fraction digit strings ("" is zero). Built digit by digit with "still equal to
    the bound" flags, like a digit DP (the recursion depth is bounded by the bounds' lengths).
    """

    @lru_cache(maxsize=None)
    def go(i: int, tight_lo: bool, tight_hi: bool, first: bool) -> rx.Regex:
        least = 1 if first else 0
        if tight_lo and i >= len(lo) and not lo_strict:
            tight_lo = False  # equal to a non-strict lower bound: every continuation is >= lo
        if tight_hi and i >= len(hi):
            # equal to hi so far and hi has no more digits: only zeros may follow
            if hi_strict:
                return rx.NOTHING
            if tight_lo and (lo[i:].strip("0") or lo_strict):
                return rx.NOTHING
            return rx.repeat(rx.literal("0"), least, None)
        if not tight_lo and not tight_hi:
            return rx.repeat(DIGIT, least, None)
        if tight_lo and i >= len(lo) and not tight_hi:
            # strict lower bound reached exactly: some later digit must be non-zero
            return rx.seq(rx.star(rx.literal("0")), NONZERO, rx.star(DIGIT))
        parts = []
        if not first:
            ok = not (tight_lo and (lo[i:].strip("0") or lo_strict))
            ok = ok and not (tight_hi and not hi[i:].strip("0") and hi_strict)
            if ok:
                parts.append(rx.EMPTY)
        lo_d = int(lo[i]) if tight_lo and i < len(lo) else 0
        hi_d = int(hi[i]) if tight_hi else 9
        if lo_d > hi_d:
            return rx.alt(*parts) if parts else rx.NOTHING
        if tight_lo and tight_hi and lo_d == hi_d:
            parts.append(rx.seq(_digit_class(lo_d, lo_d), go(i + 1, True, True, False)))
        else:
            if tight_lo:
                parts.append(rx.seq(_digit_class(lo_d, lo_d), go(i + 1, True, False, False)))
            if tight_hi:
                parts.append(rx.seq(_digit_class(hi_d, hi_d), go(i + 1, False, True, False)))
            free_lo = lo_d + 1 if tight_lo else lo_d
            free_hi = hi_d - 1 if tight_hi else hi_d
            if free_lo <= free_hi:
                parts.append(rx.seq(_digit_class(free_lo, free_hi), rx.star(DIGIT)))
        return rx.alt(*parts) if parts else rx.NOTHING

    return go(0, lo is not None, hi is not None, True)


def _split(d: Decimal) -> tuple[int, str]:
    """A non-negative decimal as (integer part, fraction digits without trailing zeros)."""
    d = abs(d)
    ip = int(d)
    frac = d - ip
    s = format(frac, "f")
    fd = s.split(".")[1].rstrip("0") if "." in s else ""
    return ip, fd


def nonneg_decimal_range(lo: Decimal | None, lo_strict: bool, hi: Decimal | None, hi_strict: bool) -> rx.Regex:
    """Plain decimal spellings ``uint(\\.digits)?`` of values v >= 0 within the bounds (lo, hi >= 0 or None)."""
    if lo is not None and lo < 0:
        lo, lo_strict = None, False
    if hi is not None and hi < 0:
        return rx.NOTHING
    if lo is not None and hi is not None and (lo > hi or (lo == hi and (lo_strict or hi_strict))):
        return rx.NOTHING
    li, lf = _split(lo) if lo is not None else (0, "")
    hi_i, hf = _split(hi) if hi is not None else (None, "")
    lo_bounded = lo is not None and (lo > 0 or lo_strict)
    frac = lambda regex: rx.seq(rx.literal("."), regex)  # noqa: E731
    parts = []
    if hi is not None and li == hi_i:
        # one integer part: the fraction carries both bounds
        f_lo = lf if lo_bounded else None
        parts.append(rx.seq(uint_range(li, li), rx.optional(frac(fraction_between(f_lo, lo_strict, hf, hi_strict)))
                            if _zero_ok(lf if lo_bounded else None, lo_strict, hf, hi_strict)
                            else frac(fraction_between(f_lo, lo_strict, hf, hi_strict))))
        return rx.alt(*parts)
    # integer part == li: lower bound on the fraction only
    f_lo = lf if lo_bounded else None
    low_frac = fraction_between(f_lo, lo_strict, None, False)
    if _zero_ok(f_lo, lo_strict, None, False):
        parts.append(rx.seq(uint_range(li, li), rx.optional(frac(low_frac))))
    else:
        parts.append(rx.seq(uint_range(li, li), frac(low_frac)))
    # strictly between
    mid = uint_range(li + 1, None if hi_i is None else hi_i - 1)
    parts.append(rx.seq(mid, rx.optional(frac(rx.plus(DIGIT)))))
    if hi_i is not None:
        high_frac = fraction_between(None, False, hf, hi_strict)
        if _zero_ok(None, False, hf, hi_strict):
            parts.append(rx.seq(uint_range(hi_i, hi_i), rx.optional(frac(high_frac))))
        else:
            parts.append(rx.seq(uint_range(hi_i, hi_i), frac(high_frac)))
    return rx.alt(*parts)


def _zero_ok(lo: str | None, lo_strict: bool, hi: str | None, hi_strict: bool) -> bool:
    """Whether an absent fraction (value .0) satisfies the fraction bounds."""
    if lo is not None and (lo.strip("0") or lo_strict):
        return False
    if hi is not None and not hi.strip("0") and hi_strict:
        return False
    return True


def number_range(lo: Decimal | None, lo_strict: bool, hi: Decimal | None, hi_strict: bool) -> rx.Regex:
    """All accepted spellings of JSON numbers v with lo (<|<=) v (<|<=) hi. Memoized: schemas
    repeat their bounds (7.5k calls, 1.3 s, in MaskBench's 129 compiles of 0.25-1 s), and the
    bounds key by their text, so ``1`` and ``1.0`` each get the regex built from them."""
    return _number_range(None if lo is None else str(Decimal(lo)), bool(lo_strict),
                         None if hi is None else str(Decimal(hi)), bool(hi_strict))


@lru_cache(maxsize=4096)
def _number_range(lo_text: str | None, lo_strict: bool, hi_text: str | None, hi_strict: bool) -> rx.Regex:
    lo = None if lo_text is None else Decimal(lo_text)
    hi = None if hi_text is None else Decimal(hi_text)
    if (lo is None or lo == 0) and (hi is None or hi == 0):
        return _sign_only_number(lo, lo_strict, hi, hi_strict)
    positive = nonneg_decimal_range(lo, lo_strict, hi, hi_strict)
    # "-x" spells -x: needs -x in [lo, hi], i.e. x in [-hi, -lo] with the strictness swapped ("-0" is 0)
    x_lo = -hi if hi is not None and hi <= 0 else None
    x_hi = -lo if lo is not None else None
    negative = nonneg_decimal_range(x_lo, hi_strict if x_lo is not None else False, x_hi, lo_strict)
    return rx.alt(positive, rx.seq(rx.literal("-"), negative))


def _sign_only_number(lo, lo_strict, hi, hi_strict) -> rx.Regex:
    mantissa_any = rx.seq(UINT, rx.optional(rx.seq(rx.literal("."), DIGITS)))
    zero = rx.seq(rx.literal("0"), rx.optional(rx.seq(rx.literal("."), rx.plus(rx.literal("0")))))
    positive = rx.alt(rx.seq(NONZERO, rx.star(DIGIT), rx.optional(rx.seq(rx.literal("."), DIGITS))),
                      rx.seq(rx.literal("0."), rx.star(rx.literal("0")), NONZERO, rx.star(DIGIT)))
    exp = rx.optional(EXPONENT)
    want_pos = hi is None
    want_neg = lo is None
    want_zero = (lo is None or not lo_strict) and (hi is None or not hi_strict)
    parts = []
    if want_pos:
        parts.append(rx.seq(positive, exp))
    if want_neg:
        parts.append(rx.seq(rx.literal("-"), positive, exp))
    if want_zero:
        parts.append(rx.seq(rx.optional(rx.literal("-")), zero, exp))
    if want_pos and want_neg and want_zero:
        return rx.seq(rx.optional(rx.literal("-")), mantissa_any, exp)
    return rx.alt(*parts) if parts else rx.NOTHING


@lru_cache(maxsize=4096)
def integer_range(lo: int | None, hi: int | None, zero_fraction: bool = True) -> rx.Regex:
    """Spellings of integral values in [lo, hi]: ``-?uint`` with an optional zero fraction ``.0+``.

    Unbounded (or sign-only) ranges also accept a non-negative exponent (``1e+20`` is an integer).
    """
    if lo is not None and hi is not None and lo > hi:
        return rx.NOTHING
    parts = []
    if hi is None or hi >= 0:
        parts.append(uint_range(max(lo, 0) if lo is not None else 0, hi))
    if lo is None or lo <= 0:
        neg_lo = 0 if hi is None or hi >= 0 else -hi
        parts.append(rx.seq(rx.literal("-"), uint_range(neg_lo, None if lo is None else -lo)))
    frac = ZERO_FRACTION if zero_fraction else rx.EMPTY  # draft 4: 1.0 is not an integer
    body = rx.seq(rx.alt(*parts), frac)
    if not zero_fraction and lo is None and hi is None:
        return rx.seq(body, rx.optional(POS_EXPONENT))  # 1e+308 (a float) is integral in every draft
    if zero_fraction and lo in (None, 0) and hi in (None, 0):
        # exponent forms keep the sign; mantissa with zero fraction times 10^k (k >= 0) is integral
        if lo == 0 and hi == 0:
            return rx.seq(rx.optional(rx.literal("-")), rx.literal("0"), ZERO_FRACTION, rx.optional(POS_EXPONENT))
        body = rx.seq(body, rx.optional(POS_EXPONENT))
    return body


def decimal_literal(value: Decimal) -> rx.Regex:
    """Spellings of exactly this numeric value (JSON equality: 1 == 1.0): plain decimal, trailing zeros
    ok, and scientific notation with one leading digit (``1e+308``, ``-1.5E-07``, ``2.50e3``: what
    JSON serializers write for large and small floats). Other exponent spellings of the value
    (``10e307``, ``0.1e309``) are not accepted: with unbounded zero runs they are not regular."""
    neg = value < 0
    ip, fd = _split(value)
    body = rx.seq(uint_range(ip, ip),
                  rx.seq(rx.literal("." + fd), rx.star(rx.literal("0"))) if fd else ZERO_FRACTION)
    if value == 0:
        return rx.seq(rx.optional(rx.literal("-")), rx.alt(body, rx.seq(rx.literal("0"), ZERO_FRACTION, EXPONENT)))
    _, digits, exp = abs(value).normalize().as_tuple()
    sig = "".join(map(str, digits))
    power = exp + len(sig) - 1  # exponent of the leading significant digit
    mantissa = rx.seq(rx.literal(sig[0]), rx.seq(rx.literal("." + sig[1:]), rx.star(rx.literal("0")))
                      if len(sig) > 1 else ZERO_FRACTION)
    zeros = rx.star(rx.literal("0"))
    if power > 0:
        exponent = rx.seq(rx.optional(rx.literal("+")), zeros, rx.literal(str(power)))
    elif power < 0:
        exponent = rx.seq(rx.literal("-"), zeros, rx.literal(str(-power)))
    else:
        exponent = rx.seq(rx.optional(rx.alt(rx.literal("+"), rx.literal("-"))), rx.plus(rx.literal("0")))
    scientific = rx.seq(mantissa, rx.alt(rx.literal("e"), rx.literal("E")), exponent)
    body = rx.alt(body, scientific)
    return rx.seq(rx.literal("-"), body) if neg else body


def multiple_of_decimal_places(places: int) -> rx.Regex:
    """Fraction part (with its dot, optional) of numbers that are multiples of 10^-places."""
    if places <= 0:
        return ZERO_FRACTION
    return rx.optional(rx.seq(rx.literal("."), rx.repeat(DIGIT, 1, places), rx.star(rx.literal("0"))))
