"""Mask kernels: where token bitmasks meet the model's logits (the ``kernels`` layer; imports only
``corral.errors`` from corral).

- ``apply_token_bitmask_inplace(logits, bitmask, indices=None, *, vocab_size=None)``: masked
  entries become -inf; Triton on CUDA, numba on CPU (XGrammar-compatible call).
- ``masked_log_softmax(logits, bitmask, temperature=1.0, indices=None, *, vocab_size=None)``: the
  fused variant, returning renormalized log-probabilities over the allowed tokens and log Z, the
  log of the allowed probability mass.
- ``allocate_token_bitmask(batch_size, vocab_size)``: int32 [B, ceil(V/32)], all tokens allowed.
- ``apply_token_bitmask_inplace_reference`` / ``masked_log_softmax_reference`` / ``unpack_bitmask``:
  plain-torch references (the test oracle).

See docs/kernels.md for the layout, semantics and measured timings.
"""
from .api import (
    allocate_token_bitmask,
    apply_token_bitmask_inplace,
    get_bitmask_shape,
    masked_log_softmax,
)
from .reference import (
    apply_token_bitmask_inplace_reference,
    masked_log_softmax_reference,
    unpack_bitmask,
)

__all__ = [
    "allocate_token_bitmask",
    "apply_token_bitmask_inplace",
    "apply_token_bitmask_inplace_reference",
    "get_bitmask_shape",
    "masked_log_softmax",
    "masked_log_softmax_reference",
    "unpack_bitmask",
]
