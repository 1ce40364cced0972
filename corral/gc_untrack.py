"""Taking acyclic long-lived objects out of the cyclic GC's bookkeeping, and no automatic
collections inside a compile (``gc_paused``).

A full collection visits every tracked object, so its pauses grow with what a long process keeps:
a MaskBench worker over JsonSchemaStore's 385 schemas spent 34 s of 175 s in 118 full passes (the
worst 828 ms, landing inside a mask), with ~500k tracked objects alive. CPython untracks exact
tuples (and dicts) of untracked values by itself, but never a named tuple or a dataclass instance,
however plain its fields. ``untrack`` does it for objects that cannot be part of a reference cycle:
immutable records whose fields are atomic values or objects built before them (parser states,
regex AST nodes). Elsewhere than CPython it does nothing.

What else a long compile-heavy process keeps is made GC-free where it is made: the code-point DFAs
in ``cpdfa``'s memos keep tuple rows, and regex nodes' child tuples and hash-holding instance dicts
are untracked with them. After 400 MaskBench compiles (no masks) a full collection visited 183k
objects in ~117 ms; now 41k in ~34 ms, and the GC's share of those compiles fell from 2.6-2.9 s
to 1.2-1.6 s (mean compile 39-41 -> 35-36 ms; `/work/runs/s24/cwm.py 400 5 0`, a scratch loop).
Masks keep more: the parser tables' prediction and push-closure entries (frozensets of ints, and
the pairs holding them), the byte DFAs and the per-vocabulary walk memos' entries (DFAs, arrays,
weak references). With masks, after 100 MaskBench schemas: 44k tracked objects -> 19k, a full
collection 27 -> 13 ms.
"""
from __future__ import annotations

import ctypes
import gc
import threading
from contextlib import contextmanager

try:
    _untrack = ctypes.pythonapi.PyObject_GC_UnTrack
    _untrack.argtypes = [ctypes.py_object]
    _untrack.restype = None
except (AttributeError, OSError):  # not CPython
    _untrack = None


def untrack(obj) -> None:
    """Stop the cyclic GC from tracking ``obj`` (safe on an untracked object; ~0.2 µs). Only for
    objects that can never be part of a reference cycle: an untracked cycle is never freed."""
    if _untrack is not None:
        _untrack(obj)


_pause_lock = threading.Lock()
_pause_depth = 0
_paused_by_us = False


@contextmanager
def gc_paused():
    """No automatic cyclic collection while a grammar compiles (nested and concurrent compiles
    share one pause; a GC the caller had disabled stays disabled). A compile allocates ~10^5
    short-lived objects, and the young-generation passes they triggered, each re-visiting what the
    compile had built so far, were 12-14 % of the mean MaskBench compile: in one process over 400
    schemas with their masks, mean compile 35.7 -> 30.9 ms and 21.6 -> 18.9 ms (two samples),
    the GC's total 3.1 -> 1.6 s and 1.9 -> 1.1 s, masks unchanged (`/work/runs/s25/gcd.py`). What
    the compile leaves is collected by the first automatic pass after it, as before. The pause is
    process-wide (CPython has no per-thread GC): other threads' cyclic garbage waits while any
    compile runs, which compile budgets bound."""
    global _pause_depth, _paused_by_us
    with _pause_lock:
        if _pause_depth == 0:
            _paused_by_us = gc.isenabled()
            if _paused_by_us:
                gc.disable()
        _pause_depth += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pause_depth -= 1
            if _pause_depth == 0 and _paused_by_us:
                _paused_by_us = False
                gc.enable()
