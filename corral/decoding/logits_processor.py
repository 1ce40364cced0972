"""`corral.LogitsProcessor`: grammar constraints inside transformers' own ``model.generate``.

transformers calls the processor once per step with the ids so far and the next-token scores. The
processor keeps one matcher per distinct generated prefix (not per row index), so it stays right when
``generate`` reorders or duplicates rows (beam search, ``num_return_sequences``): a row's matcher is
its parent prefix's matcher (forked when the parent has several children) advanced by the last token.

transformers runs custom processors BEFORE its temperature / top-k / top-p warpers, so with
``do_sample=True`` those truncations see masked scores and can never empty the allowed set. EOS is
allowed exactly when the matcher is accepting (the engine's bitmask says so). A row whose matcher has
accepted EOS is left unmasked: transformers overwrites its tokens with padding from then on.

Use one processor per ``generate`` call (or call ``reset()``): it learns the prompt length on its
first call.
"""
from __future__ import annotations

import time

import torch
from transformers import LogitsProcessor as _HFLogitsProcessor

from corral.decoding.generate import allocate_bitmask, apply_bitmask_inplace, fill_masks, resolve_grammar, vocabulary_for


class LogitsProcessor(_HFLogitsProcessor):
    """Mask ``model.generate``'s scores to a grammar. ``grammar_or_schema`` as for ``corral.generate``."""

    def __init__(self, grammar_or_schema, tokenizer=None, vocab=None, schema_options: dict | None = None):
        if vocab is None and tokenizer is None and not hasattr(grammar_or_schema, "vocab"):
            raise TypeError("LogitsProcessor needs the tokenizer (or vocab=) to compile a schema")
        self.grammar = resolve_grammar(grammar_or_schema, tokenizer, vocab, schema_options)
        self.vocab = vocab or getattr(self.grammar, "vocab", None) or vocabulary_for(tokenizer)
        self.mask_seconds = 0.0  # total time spent filling masks
        self.calls = 0
        self.reset()

    def reset(self) -> None:
        """Forget all sequences (call between two ``generate`` calls that share this processor)."""
        self._prompt_len: int | None = None
        self._by_prefix: dict[tuple[int, ...], object] = {}
        self._bitmask: torch.Tensor | None = None

    def matcher_for_row(self, generated: tuple[int, ...]):
        """The matcher that has consumed exactly ``generated`` (after the latest call)."""
        return self._by_prefix[generated]

    def _advance(self, generated_rows: list[tuple[int, ...]]) -> list:
        previous = self._by_prefix
        current: dict[tuple[int, ...], object] = {}
        children: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
        for generated in dict.fromkeys(generated_rows):  # distinct prefixes, in row order
            if not generated:
                current[generated] = previous.get(generated) or self.grammar.matcher()
            else:
                children.setdefault(generated[:-1], []).append(generated)
        for parent_key, kids in children.items():
            parent = previous.get(parent_key)
            if parent is None:
                raise RuntimeError("LogitsProcessor saw a sequence it did not constrain; call reset() between generate calls")
            # Fork BEFORE advancing anyone: every child starts from the parent's state.
            copies = [parent] + [parent.fork() for _ in kids[1:]]
            for generated, matcher in zip(kids, copies):
                if not matcher.is_terminated() and not matcher.accept_token(generated[-1]):
                    raise RuntimeError(f"token {generated[-1]} was generated although the grammar forbids it")
                current[generated] = matcher  # a terminated row stays terminated: transformers pads it
        self._by_prefix = current
        return [current[g] for g in generated_rows]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.calls += 1
        if self._prompt_len is None:
            self._prompt_len = input_ids.shape[1]
        rows = [tuple(r) for r in input_ids[:, self._prompt_len :].tolist()]
        matchers = self._advance(rows)
        live = [i for i, m in enumerate(matchers) if not m.is_terminated()]
        if not live:
            return scores
        if self._bitmask is None or self._bitmask.shape[0] < len(live):
            self._bitmask = allocate_bitmask(input_ids.shape[0], self.vocab.size)
        bitmask = self._bitmask[: len(live)]
        started = time.perf_counter()
        fill_masks([matchers[i] for i in live], bitmask)
        self.mask_seconds += time.perf_counter() - started
        if len(live) == scores.shape[0]:
            apply_bitmask_inplace(scores, bitmask)
            return scores
        index = torch.tensor(live, device=scores.device)
        live_scores = scores[index]
        apply_bitmask_inplace(live_scores, bitmask)
        scores[index] = live_scores
        return scores
