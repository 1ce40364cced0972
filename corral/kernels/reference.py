"""Plain-torch reference implementations of the mask kernels (the oracle the fast paths are tested
against; simple rather than fast: they unpack the bitmask into a [B, V] bool tensor)."""
from __future__ import annotations

import torch

from ._args import IndicesLike, check_mask_call, check_temperature


def unpack_bitmask(bitmask: torch.Tensor, n_tokens: int, vocab_bound: int | None = None) -> torch.Tensor:
    """bool [B, n_tokens]: True where token t is allowed (bit t%32 of word t//32 set and
    t < vocab_bound). Tokens beyond the bitmask's 32*W bits are not allowed."""
    bitmask = bitmask.unsqueeze(0) if bitmask.dim() == 1 else bitmask
    n_rows, n_words = bitmask.shape
    shifts = torch.arange(32, dtype=torch.int32, device=bitmask.device)
    bits = ((bitmask.unsqueeze(-1) >> shifts) & 1).bool().reshape(n_rows, 32 * n_words)
    allowed = torch.zeros(n_rows, n_tokens, dtype=torch.bool, device=bitmask.device)
    bound = min(n_tokens, 32 * n_words, n_tokens if vocab_bound is None else vocab_bound)
    allowed[:, :bound] = bits[:, :bound]
    return allowed


def _row_list(rows, n_rows: int) -> list[int]:
    if rows is None:
        return list(range(n_rows))
    if isinstance(rows, torch.Tensor):
        return [int(r) for r in rows.tolist() if 0 <= int(r) < n_rows]
    return list(rows)


def apply_token_bitmask_inplace_reference(
    logits: torch.Tensor,
    bitmask: torch.Tensor,
    indices: IndicesLike = None,
    *,
    vocab_size: int | None = None,
) -> None:
    """Reference for :func:`corral.kernels.apply_token_bitmask_inplace` (same contract)."""
    call = check_mask_call(logits, bitmask, indices, vocab_size)
    x = call.logits
    rows = _row_list(call.rows, min(x.shape[0], call.bitmask.shape[0]) if call.rows is not None else x.shape[0])
    if not rows or x.shape[1] == 0:
        return
    allowed = unpack_bitmask(call.bitmask[rows], x.shape[1], call.vocab_bound)
    for i, r in enumerate(rows):
        x[r].masked_fill_(~allowed[i], float("-inf"))


def masked_log_softmax_reference(
    logits: torch.Tensor,
    bitmask: torch.Tensor,
    temperature=1.0,
    indices: IndicesLike = None,
    *,
    vocab_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference for :func:`corral.kernels.masked_log_softmax` (same contract), computed in float64."""
    call = check_mask_call(logits, bitmask, indices, vocab_size)
    x = call.logits
    n_rows, n_cols = x.shape
    temp = check_temperature(temperature, n_rows, logits)
    z = x.double()
    z = z / (temp.double().unsqueeze(1) if isinstance(temp, torch.Tensor) else temp)
    if call.rows is None:
        allowed = unpack_bitmask(call.bitmask[:n_rows], n_cols, call.vocab_bound)
    else:
        allowed = torch.ones(n_rows, n_cols, dtype=torch.bool, device=x.device)
        rows = _row_list(call.rows, min(n_rows, call.bitmask.shape[0]))
        if rows:
            allowed[rows] = unpack_bitmask(call.bitmask[rows], n_cols, call.vocab_bound)
    neg_inf = torch.tensor(float("-inf"), dtype=torch.float64, device=x.device)
    lse_all = torch.logsumexp(z, dim=1)
    z_allowed = torch.where(allowed, z, neg_inf)
    lse_allowed = torch.logsumexp(z_allowed, dim=1)
    no_mass = lse_allowed == float("-inf")
    logprobs = torch.where(allowed & ~no_mass.unsqueeze(1), z_allowed - lse_allowed.unsqueeze(1), neg_inf)
    log_z = torch.where(no_mass, neg_inf, lse_allowed - lse_all)
    out_shape = logits.shape
    return logprobs.float().reshape(out_shape), log_z.float().reshape(out_shape[:-1])
