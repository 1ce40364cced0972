"""corral's own constrained decode loop (`generate`, `generate_json`) over any Hugging Face causal LM.

One loop serves a batch of prompts:

* the prompts are left-padded and prefilled once; every later forward reuses the KV cache;
* the next token mask is computed on a worker thread while the model's forward runs (the engine's mask
  code runs in numba with the GIL released, and torch releases it inside its kernels), so on a GPU the
  mask is free whenever it is faster than the forward;
* the mask is applied to the logits first, and temperature / top-k / top-p only afterwards, so a
  truncation can never leave a sequence with no allowed token; EOS is allowed exactly when the matcher
  is accepting (the engine's bitmask says so);
* jump-forward: when the grammar alone determines the next text (``Matcher.jump_forward_string()``),
  its tokens are fed as drafts in the same forward as the sampled token, and verified from that
  forward's logits (speculative decoding with the grammar as the draft model).

Jump-forward rule (tokenization boundaries): the forced text is tokenized on its own and its tokens are
taken in order while the matcher accepts them. Those tokens are only a draft, because the tokenizer's
canonical split need not be what the model writes (``{"`` vs ``{`` + ``"``, or a last token that the
model would merge with the free text after it, e.g. ``Ġ"`` vs ``Ġ"John``). The forward that consumes
the drafts returns logits at every draft position; each draft is checked against the masked
distribution there: under greedy it must be the masked argmax; under sampling it is kept with
probability q(draft) and otherwise replaced by a sample from q without it (q: the masked, warped
distribution). The first rejected draft is replaced by the model's own choice from the same forward,
the later drafts are dropped (their cache entries are masked out), and the matcher rolls back. So the
output equals decoding without jump-forward token for token under greedy (up to floating-point
near-ties between a one-token and a multi-token forward), and in distribution under sampling; a
rejection costs no extra forward.
Every generation reports whether it finished (EOS accepted in an accepting state) or is incomplete
(cut by ``max_new_tokens``, or a dead end): an incomplete text is never passed off as a valid document.
"""
from __future__ import annotations

import inspect
import json
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from corral.decoding.models import format_prompt
from corral.errors import CorralError

# ----------------------------------------------------------------------------------------------------
# Results


@dataclass
class StepTiming:
    """One forward of the batch: what it fed and where the time went (seconds)."""

    forward_s: float  # the model's forward (wall time on the calling thread)
    mask_s: float  # time the worker spent filling the masks for this step (overlaps the forward)
    mask_wait_s: float  # time the loop waited for the masks after the forward returned (exposed cost)
    sample_s: float  # apply mask + sample + accept + jump-forward bookkeeping
    tokens_fed: int  # real (non-pad) tokens fed in this forward, over the batch
    tokens_forced: int  # of which were jump-forward drafts
    drafts_rejected: int  # drafts the verification replaced by the model's own choice
    tokens_sampled: int  # tokens sampled from this forward's logits, over the batch


@dataclass
class GenerationResult:
    """One prompt's generation."""

    text: str
    token_ids: list[int]  # generated ids (forced ones included, EOS excluded)
    finished: bool  # True iff the matcher accepted EOS (the text is a complete member of the language)
    stop_reason: str  # "eos" | "max_new_tokens" | "dead_end"
    accepting: bool  # the text so far is in the language (may be True when cut: e.g. a shorter number)
    num_forced: int  # how many of token_ids came from jump-forward (verified drafts)
    num_forwards: int  # forwards that produced a token for this sequence (prefill included)
    prompt_tokens: int
    steps: list[StepTiming] = field(default_factory=list, repr=False)  # shared by the whole batch

    @property
    def incomplete(self) -> bool:
        return not self.finished

    def timing_summary(self) -> dict[str, float]:
        """Totals over the batch's steps (the batch shares its forwards)."""
        steps = self.steps
        return {
            "forwards": len(steps),
            "forward_s": sum(s.forward_s for s in steps),
            "mask_s": sum(s.mask_s for s in steps),
            "mask_wait_s": sum(s.mask_wait_s for s in steps),
            "sample_s": sum(s.sample_s for s in steps),
            "tokens_forced": sum(s.tokens_forced for s in steps),
            "drafts_rejected": sum(s.drafts_rejected for s in steps),
            "tokens_sampled": sum(s.tokens_sampled for s in steps),
        }


class IncompleteGenerationError(CorralError):
    """generate_json could not return a document: the generation was cut before it was complete."""

    def __init__(self, result: GenerationResult):
        self.result = result
        super().__init__(
            f"generation incomplete ({result.stop_reason}) after {len(result.token_ids)} tokens; "
            f"partial text: {result.text[:200]!r}"
        )


# ----------------------------------------------------------------------------------------------------
# Grammar / vocabulary resolution

_VOCABS: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


def vocabulary_for(tokenizer):
    """corral.Vocabulary for a tokenizer, built once per tokenizer object."""
    try:
        return _VOCABS[tokenizer]
    except (KeyError, TypeError):
        pass
    import corral

    vocab = corral.Vocabulary.from_hf(tokenizer)
    try:
        _VOCABS[tokenizer] = vocab
    except TypeError:
        pass
    return vocab


def schema_of(schema_or_model) -> dict | None:
    """A JSON Schema dict from a dict, JSON text, or pydantic model class; None if it is none of those."""
    if isinstance(schema_or_model, (dict, bool)):
        return schema_or_model
    if isinstance(schema_or_model, (str, bytes)):
        try:
            parsed = json.loads(schema_or_model)
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, (dict, bool)) else None
    if isinstance(schema_or_model, type) and hasattr(schema_or_model, "model_json_schema"):
        return schema_or_model.model_json_schema()  # pydantic v2
    return None


# Generation defaults for JSON Schema: json.dumps' separators (the model cannot pad with whitespace
# forever), properties in the schema's order and no undeclared properties unless the schema asks for
# them (so keys are forced text that jump-forward feeds), and strings in json.dumps(ensure_ascii=False)'s
# spelling only (a small model that took one `\uXXXX` escape went on spelling every character so:
# 6 of 16 invalid outputs over 32 JSONSchemaBench schemas, bench/README.md). Every output still
# validates against the schema; these only pick which valid documents are reachable.
DEFAULT_SCHEMA_OPTIONS = {"whitespace": (", ", ": "), "property_order": "schema", "strict_properties": True,
                          "escapes": "minimal"}


def resolve_grammar(grammar_or_schema, tokenizer=None, vocab=None, schema_options: dict | None = None):
    """A compiled grammar: passed through if it already has ``.matcher()``, else compiled as a JSON Schema
    with ``schema_options`` (default ``DEFAULT_SCHEMA_OPTIONS``)."""
    if hasattr(grammar_or_schema, "matcher"):
        return grammar_or_schema
    schema = schema_of(grammar_or_schema)
    if schema is None:
        raise TypeError(
            "grammar_or_schema must be a compiled grammar (corral.compile_regex / compile_lark / "
            "compile_json_schema), a JSON Schema dict or text, or a pydantic model class; "
            f"got {type(grammar_or_schema).__name__}"
        )
    import corral

    vocab = vocab if vocab is not None else vocabulary_for(tokenizer)
    options = DEFAULT_SCHEMA_OPTIONS if schema_options is None else schema_options
    return corral.compile_json_schema(schema, vocab, **options)  # memoized per vocabulary by the engine


# ----------------------------------------------------------------------------------------------------
# Masks


def allocate_bitmask(batch_size: int, vocab_size: int) -> torch.Tensor:
    """int32 [B, ceil(V/32)] bitmask (the engine's allocator when present)."""
    try:
        from corral.kernels import allocate_token_bitmask

        return allocate_token_bitmask(batch_size, vocab_size)
    except ImportError:
        return torch.zeros((batch_size, (vocab_size + 31) // 32), dtype=torch.int32)


_BIT_SHIFTS = torch.arange(32, dtype=torch.int32)


def bitmask_to_bool(bitmask: torch.Tensor, width: int) -> torch.Tensor:
    """Unpack an int32 [B, W] bitmask into bool [B, width] (False beyond the bitmask's 32*W bits)."""
    bits = (bitmask.unsqueeze(-1) >> _BIT_SHIFTS.to(bitmask.device)) & 1  # arithmetic shift: &1 keeps bit 31 right
    allowed = bits.reshape(bitmask.shape[0], -1).bool()
    if allowed.shape[1] >= width:
        return allowed[:, :width]
    pad = torch.zeros((bitmask.shape[0], width - allowed.shape[1]), dtype=torch.bool, device=bitmask.device)
    return torch.cat([allowed, pad], dim=1)


def apply_bitmask_inplace(logits: torch.Tensor, bitmask: torch.Tensor) -> None:
    """logits[b, t] = -inf where bit t of row b is clear (and for every column the bitmask does not cover)."""
    bitmask = bitmask.to(logits.device, non_blocking=True)
    try:
        from corral.kernels import apply_token_bitmask_inplace
    except ImportError:
        apply_token_bitmask_inplace = None
    if apply_token_bitmask_inplace is not None:
        apply_token_bitmask_inplace(logits, bitmask)
        return
    allowed = bitmask_to_bool(bitmask, logits.shape[-1])
    logits.masked_fill_(~allowed, float("-inf"))


def fill_masks(matchers: Sequence[Any], bitmask: torch.Tensor) -> None:
    """Row i of ``bitmask`` <- the next-token mask of ``matchers[i]`` (the engine's batched fill when it can)."""
    batch_fill = None
    if matchers and all(type(m).__module__.startswith("corral.") for m in matchers):
        try:
            from corral import fill_next_token_bitmask_batch as batch_fill
        except ImportError:
            batch_fill = None
    if batch_fill is not None:
        batch_fill(list(matchers), bitmask)
    else:
        for row, matcher in enumerate(matchers):
            matcher.fill_next_token_bitmask(bitmask, row)


# ----------------------------------------------------------------------------------------------------
# Sampling (always on already-masked logits)


def warped_probs(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """Probabilities [R, V] from masked logits: temperature, then top-k, then top-p.

    Disallowed tokens are already -inf, so top-k / top-p only ever drop allowed tokens and always keep
    the most likely allowed one.
    """
    scores = logits.float() / temperature
    if top_k and 0 < top_k < scores.shape[-1]:
        kth = torch.topk(scores, top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_scores, order = torch.sort(scores, dim=-1, descending=True)
        probs = torch.softmax(sorted_scores, dim=-1)
        mass_before = torch.cumsum(probs, dim=-1) - probs
        drop_sorted = mass_before > top_p  # the first token has mass_before 0, so it always stays
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        scores = scores.masked_fill(drop, float("-inf"))
    return torch.softmax(scores, dim=-1)


def sample_from_masked(
    logits: torch.Tensor, temperature: float, top_k: int, top_p: float, generator: torch.Generator | None
) -> torch.Tensor:
    """Next ids [R] from masked logits [R, V]: greedy (argmax) when temperature <= 0, else sampled."""
    if temperature is None or temperature <= 0:
        return torch.argmax(logits, dim=-1)
    probs = warped_probs(logits, temperature, top_k, top_p)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


# ----------------------------------------------------------------------------------------------------
# Jump-forward

MAX_FORCED_TOKENS = 64


def forced_tokens(matcher, tokenizer, limit: int) -> list[int]:
    """Accept into ``matcher`` and return the draft tokens jump-forward feeds (see the module docstring).

    The forced text is tokenized on its own; its tokens are taken in order while the matcher accepts them.
    They are only a draft: the forward that consumes them also verifies them, so a token the model would
    not have picked there (e.g. the tokenizer's ``{"`` where the model writes ``{`` then ``"``) is replaced
    by the model's own choice at no extra forward.
    """
    limit = min(limit, MAX_FORCED_TOKENS)
    if limit <= 0:
        return []
    forced_text = matcher.jump_forward_string()
    if not forced_text:
        return []
    taken: list[int] = []
    for token_id in tokenizer.encode(forced_text, add_special_tokens=False)[:limit]:
        if not matcher.accept_token(int(token_id)):
            break
        taken.append(int(token_id))
    return taken


# ----------------------------------------------------------------------------------------------------
# The loop


def _supports_logits_to_keep(model) -> bool:
    try:
        return "logits_to_keep" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def _fill_draft_masks(jobs, bitmask) -> float:
    """Masks for every position a forward's logits will be read at.

    ``jobs``: per active row, (matcher after the whole chunk, number of draft tokens k, the drafts). The
    row needs k+1 masks: before each draft token (to verify it) and after the last one (to sample).
    Runs on the worker thread while the forward runs; works on forks, never on the live matchers.
    """
    started = time.perf_counter()
    states = []
    for matcher, drafts in jobs:
        if not drafts:
            states.append(matcher)
            continue
        probe = matcher.fork()
        probe.rollback(len(drafts))
        states.append(probe)
        for token_id in drafts:
            probe = probe.fork()
            probe.accept_token(token_id)
            states.append(probe)
    fill_masks(states, bitmask)
    return time.perf_counter() - started


def _model_eos_ids(model, tokenizer) -> set[int]:
    ids = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (configured, tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif value:
            ids.update(int(v) for v in value)
    return ids


def _token_text(vocab, token_ids: list[int], eos_ids: set[int]) -> str:
    data = b"".join(vocab.token_bytes(t) for t in token_ids if t not in eos_ids)
    return data.decode("utf-8", errors="replace")


@torch.inference_mode()
def generate(
    model,
    tokenizer,
    prompts: str | Sequence[str] | Sequence[dict],
    grammar_or_schema,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
    jump_forward: bool = True,
    *,
    vocab=None,
    chat: bool | None = None,
    system: str | None = None,
    schema_options: dict | None = None,
) -> GenerationResult | list[GenerationResult]:
    """Generate under a grammar. ``prompts``: one prompt (returns one result) or a list (returns a list).

    ``grammar_or_schema``: a compiled grammar, a JSON Schema (dict / text), or a pydantic model class;
    or a list of those, one per prompt; or None for the same loop without constraints (a baseline).
    Prompts go through the tokenizer's chat template when it has one (``chat=False`` to feed them raw).
    ``temperature <= 0`` is greedy. ``seed`` makes sampling reproducible. ``schema_options`` go to
    ``corral.compile_json_schema`` for schemas (default ``DEFAULT_SCHEMA_OPTIONS``).
    """
    single = isinstance(prompts, str) or (
        isinstance(prompts, (list, tuple)) and len(prompts) > 0 and isinstance(prompts[0], dict)
    )
    prompt_list = [prompts] if single else list(prompts)
    if not prompt_list:
        return []
    batch = len(prompt_list)
    constrained = grammar_or_schema is not None  # None: the same loop, unconstrained (a baseline)
    # One grammar for every prompt, or a list with one per prompt (e.g. different schemas in one batch).
    if isinstance(grammar_or_schema, (list, tuple)):
        if len(grammar_or_schema) != batch:
            raise ValueError(f"{len(grammar_or_schema)} grammars for {batch} prompts")
        grammars = [resolve_grammar(g, tokenizer, vocab, schema_options) for g in grammar_or_schema]
    elif not constrained:
        grammars = []
        jump_forward = False
    else:
        grammars = [resolve_grammar(grammar_or_schema, tokenizer, vocab, schema_options)] * batch
    if vocab is None and constrained:
        vocab = getattr(grammars[0], "vocab", None) or vocabulary_for(tokenizer)
    if vocab is not None:
        eos_ids = {int(t) for t in vocab.eos_token_ids}
    else:
        eos_ids = _model_eos_ids(model, tokenizer)
    device = next(model.parameters()).device
    greedy = temperature is None or temperature <= 0

    texts = [format_prompt(tokenizer, p, system=system, chat=chat) for p in prompt_list]
    templated = bool(getattr(tokenizer, "chat_template", None)) if chat is None else chat
    # A chat template writes its own special tokens; a raw prompt gets the tokenizer's (e.g. BOS).
    prompt_ids = [tokenizer.encode(t, add_special_tokens=not templated) for t in texts]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos_ids, default=0)

    matchers = [g.matcher() for g in grammars] if constrained else [None] * batch
    generated: list[list[int]] = [[] for _ in range(batch)]
    num_forced = [0] * batch
    num_forwards = [0] * batch
    done = [False] * batch
    stop_reason = [""] * batch
    steps: list[StepTiming] = []
    # What each row feeds next: context tokens (the prompt, later the sampled token) then draft tokens.
    pending_context: list[list[int]] = [list(ids) for ids in prompt_ids]
    pending_drafts: list[list[int]] = [[] for _ in range(batch)]

    def add_drafts(row: int) -> None:
        room = max_new_tokens - len(generated[row])
        drafts = forced_tokens(matchers[row], tokenizer, room) if jump_forward else []
        pending_drafts[row] = drafts
        generated[row].extend(drafts)
        num_forced[row] += len(drafts)

    for row in range(batch):
        add_drafts(row)

    generator = None
    if seed is not None:
        generator = torch.Generator(device=device).manual_seed(int(seed))
    supports_keep = _supports_logits_to_keep(model)
    attention = torch.zeros((batch, 0), dtype=torch.long, device=device)
    positions_so_far = torch.zeros(batch, dtype=torch.long)  # real tokens in the cache, per row
    cache = None

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="corral-mask") as worker:
        while not all(done):
            active = [row for row in range(batch) if not done[row]]
            # Right-align every row's chunk so its last k+1 logits are the ones verification and sampling
            # read; the pads inside the chunk stay masked out of attention for good.
            chunks = {row: pending_context[row] + pending_drafts[row] for row in active}
            width = max(len(chunks[row]) for row in active)
            read = max(len(pending_drafts[row]) for row in active) + 1  # logits positions to keep
            chunk = torch.full((batch, width), pad_id, dtype=torch.long)
            chunk_mask = torch.zeros((batch, width), dtype=torch.long)
            chunk_pos = torch.zeros((batch, width), dtype=torch.long)
            tokens_fed = drafts_fed = 0
            for row in active:
                ids = chunks[row]
                start = width - len(ids)
                chunk[row, start:] = torch.tensor(ids, dtype=torch.long)
                chunk_mask[row, start:] = 1
                chunk_pos[row, start:] = positions_so_far[row] + torch.arange(len(ids))
                positions_so_far[row] += len(ids)
                tokens_fed += len(ids)
                drafts_fed += len(pending_drafts[row])
                num_forwards[row] += 1
            # Mask rows: row `row` owns k+1 consecutive rows starting at mask_offset[row].
            mask_offset, total = {}, 0
            for row in active:
                mask_offset[row] = total
                total += len(pending_drafts[row]) + 1
            if constrained:
                bitmask = allocate_bitmask(total, vocab.size)
                jobs = [(matchers[row], pending_drafts[row]) for row in active]
                mask_job = worker.submit(_fill_draft_masks, jobs, bitmask)

            attention = torch.cat([attention, chunk_mask.to(device)], dim=1)
            t0 = time.perf_counter()
            out = model(
                input_ids=chunk.to(device),
                attention_mask=attention,
                position_ids=chunk_pos.to(device),
                past_key_values=cache,
                use_cache=True,
                **({"logits_to_keep": read} if supports_keep else {}),
            )
            cache = out.past_key_values
            tail_logits = out.logits[:, -read:, :]
            if tail_logits.device.type == "cuda":
                torch.cuda.synchronize(tail_logits.device)  # so forward_s is the forward, not a launch
            t1 = time.perf_counter()
            mask_s = mask_job.result() if constrained else 0.0
            t2 = time.perf_counter()

            # Gather the logits each mask row belongs to, mask them all at once.
            gather_rows, gather_cols = [], []
            for row in active:
                k = len(pending_drafts[row])
                gather_rows.extend([row] * (k + 1))
                gather_cols.extend(range(read - k - 1, read))
            masked = tail_logits[torch.tensor(gather_rows, device=device), torch.tensor(gather_cols, device=device)]
            masked = masked.float()
            if constrained:
                apply_bitmask_inplace(masked, bitmask)
            if greedy:
                choices = torch.argmax(masked, dim=-1).tolist()
                probs = None
            else:
                probs = warped_probs(masked, temperature, top_k, top_p)
                choices = None
            dead = torch.isneginf(masked).all(dim=-1).tolist()

            sampled = drafts_rejected = 0
            for row in active:
                drafts = pending_drafts[row]
                base = mask_offset[row]
                token_id = None
                rejected_at = len(drafts)
                for j, draft in enumerate(drafts):
                    if greedy:
                        if choices[base + j] != draft:
                            rejected_at, token_id = j, int(choices[base + j])
                            break
                    else:
                        # Speculative acceptance of a deterministic draft: keep it with probability q(draft),
                        # else sample from q without it. The output distribution is exactly q's.
                        q = probs[base + j]
                        if torch.rand((), generator=generator, device=q.device).item() < float(q[draft]):
                            continue
                        residual = q.clone()
                        residual[draft] = 0.0
                        rejected_at = j
                        token_id = int(torch.multinomial(residual / residual.sum(), 1, generator=generator))
                        break
                if rejected_at < len(drafts):
                    undo = len(drafts) - rejected_at
                    drafts_rejected += undo
                    matchers[row].rollback(undo)
                    del generated[row][-undo:]
                    num_forced[row] -= undo
                    # The rejected drafts are in the cache: mask them out and reuse their positions.
                    attention[row, attention.shape[1] - undo :] = 0
                    positions_so_far[row] -= undo
                else:
                    last = base + len(drafts)
                    if dead[last]:  # no allowed token at all: the grammar cannot continue from here
                        done[row], stop_reason[row] = True, "dead_end"
                        continue
                    if greedy:
                        token_id = int(choices[last])
                    else:
                        token_id = int(torch.multinomial(probs[last], 1, generator=generator))
                if token_id not in eos_ids and len(generated[row]) >= max_new_tokens:
                    done[row], stop_reason[row] = True, "max_new_tokens"  # drafts used the whole budget
                    continue
                if constrained and not matchers[row].accept_token(token_id):
                    raise RuntimeError(f"matcher rejected token {token_id} that its own mask allowed")
                sampled += 1
                if token_id in eos_ids or (constrained and matchers[row].is_terminated()):
                    done[row], stop_reason[row] = True, "eos"
                    continue
                generated[row].append(token_id)
                pending_context[row] = [token_id]
                pending_drafts[row] = []
                if len(generated[row]) >= max_new_tokens:
                    done[row], stop_reason[row] = True, "max_new_tokens"
                    continue
                add_drafts(row)
            t3 = time.perf_counter()
            steps.append(
                StepTiming(
                    forward_s=t1 - t0,
                    mask_s=mask_s,
                    mask_wait_s=t2 - t1,
                    sample_s=t3 - t2,
                    tokens_fed=tokens_fed,
                    tokens_forced=drafts_fed,
                    drafts_rejected=drafts_rejected,
                    tokens_sampled=sampled,
                )
            )

    results = []
    for row in range(batch):
        matcher = matchers[row]
        results.append(
            GenerationResult(
                text=_token_text(vocab, generated[row], eos_ids) if constrained
                else tokenizer.decode(generated[row], skip_special_tokens=True),
                token_ids=generated[row],
                finished=stop_reason[row] == "eos",
                stop_reason=stop_reason[row],
                accepting=bool(matcher.is_accepting()) if constrained else True,
                num_forced=num_forced[row],
                num_forwards=num_forwards[row],
                prompt_tokens=len(prompt_ids[row]),
                steps=steps,
            )
        )
    return results[0] if single else results


def generate_json(
    model,
    tokenizer,
    prompt: str | Sequence[dict],
    schema,
    max_new_tokens: int = 512,
    *,
    schema_in_prompt: bool = True,
    return_result: bool = False,
    **sampling,
):
    """Generate one JSON document valid for ``schema`` (dict, JSON text, or pydantic model class).

    Returns the parsed value (a pydantic instance when ``schema`` is a pydantic model), or
    ``(value, GenerationResult)`` with ``return_result=True``. Raises ``IncompleteGenerationError``
    when the generation is cut before the document is complete: never returns a partial document.
    ``schema_in_prompt`` appends the schema to the user's message so the model knows what to write
    (the grammar enforces it either way).
    """
    schema_dict = schema_of(schema)
    if schema_dict is None:
        raise TypeError("schema must be a JSON Schema dict / text or a pydantic model class")
    if schema_in_prompt and isinstance(prompt, str):
        prompt = f"{prompt}\n\nAnswer with a JSON document matching this JSON Schema:\n{json.dumps(schema_dict)}"
    result = generate(model, tokenizer, prompt, schema_dict, max_new_tokens=max_new_tokens, **sampling)
    if not result.finished:
        raise IncompleteGenerationError(result)
    value = json.loads(result.text)
    if isinstance(schema, type) and hasattr(schema, "model_validate"):
        value = schema.model_validate(value)
    return (value, result) if return_result else value
