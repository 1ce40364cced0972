"""Constrained generation on CUDA: the decode loop's masks go through the Triton apply kernel and the
model runs on the GPU. Skipped without CUDA (CI has none); run on a lent GPU machine.

The model is a small randomly initialised Llama (float32, so the KV-cache loop and the full-forward
reference agree to rounding) over the real offline Llama-3 tokenizer: what is checked is the plumbing
(device placement, padding, the kernel, jump-forward), not the model's quality.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import corral
from corral.decoding import LogitsProcessor, generate

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

PERSON_REGEX = r'\{"name": "[A-Za-z ]{1,12}", "age": [0-9]{1,3}\}'
PROMPTS = ["Bob is 30. Give him as JSON:", "A person called Alice Smith who is seven years old, as JSON please:",
           "Carol, 41:", "Someone with a long name and an age below 100:"]


@pytest.fixture(scope="module")
def tiny_llama(llama3_tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=128256, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, bos_token_id=128000, eos_token_id=128001)
    model = LlamaForCausalLM(config).to("cuda").eval()
    tokenizer = llama3_tokenizer
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


@pytest.fixture(scope="module")
def person_grammar(llama3_vocab):
    return corral.compile_regex(PERSON_REGEX, llama3_vocab)


@torch.inference_mode()
def naive_greedy(model, tokenizer, vocab, grammar, prompt: str, max_new_tokens: int) -> list[int]:
    """Full forward over the whole text every step, the mask unpacked with numpy on the host, argmax."""
    ids = tokenizer.encode(prompt, add_special_tokens=True)
    matcher = grammar.matcher()
    bitmask = torch.zeros((1, (vocab.size + 31) // 32), dtype=torch.int32)
    out: list[int] = []
    eos = set(vocab.eos_token_ids)
    for _ in range(max_new_tokens):
        logits = model(input_ids=torch.tensor([ids + out], device="cuda")).logits[0, -1].float().cpu().numpy()
        matcher.fill_next_token_bitmask(bitmask, 0)
        allowed = np.unpackbits(bitmask.numpy().view(np.uint8), bitorder="little")[: logits.shape[0]].astype(bool)
        logits[~allowed] = -np.inf
        token = int(np.argmax(logits))
        assert matcher.accept_token(token)
        if token in eos:
            break
        out.append(token)
    return out


def test_cuda_loop_equals_naive_reference_with_and_without_jump_forward(tiny_llama, llama3_vocab, person_grammar):
    model, tokenizer = tiny_llama
    off = generate(model, tokenizer, PROMPTS, person_grammar, max_new_tokens=48, jump_forward=False, chat=False)
    on = generate(model, tokenizer, PROMPTS, person_grammar, max_new_tokens=48, jump_forward=True, chat=False)
    for prompt, a, b in zip(PROMPTS, off, on):
        assert a.finished and re.fullmatch(PERSON_REGEX, a.text)
        assert a.token_ids == naive_greedy(model, tokenizer, llama3_vocab, person_grammar, prompt, 48)
        assert b.token_ids == a.token_ids and b.num_forwards < a.num_forwards


def test_cuda_logits_processor_in_model_generate_batch(tiny_llama, llama3_vocab, person_grammar):
    from transformers import LogitsProcessorList

    model, tokenizer = tiny_llama
    own = generate(model, tokenizer, PROMPTS, person_grammar, max_new_tokens=48, jump_forward=False, chat=False)
    tokenizer.padding_side = "left"
    batch = tokenizer(PROMPTS, return_tensors="pt", padding=True).to("cuda")
    processor = LogitsProcessor(person_grammar, tokenizer)
    # the matcher ends on any of the vocabulary's stop tokens (Llama-3: <|end_of_text|> and <|eot_id|>)
    eos = set(llama3_vocab.eos_token_ids) | {tokenizer.pad_token_id}
    with torch.inference_mode():
        out = model.generate(**batch, logits_processor=LogitsProcessorList([processor]), max_new_tokens=48,
                             do_sample=False, pad_token_id=tokenizer.pad_token_id, eos_token_id=sorted(eos))
    new = out[:, batch["input_ids"].shape[1]:].tolist()
    for row, result in zip(new, own):
        ids = row[: next((i for i, t in enumerate(row) if t in eos), len(row))]
        assert re.fullmatch(PERSON_REGEX, tokenizer.decode(ids))
        assert ids == result.token_ids
