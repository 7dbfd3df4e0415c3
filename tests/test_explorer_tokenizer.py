"""The explorer's JavaScript tokenizer (samgap_lib/explorer/static/tokenizer.js) against Python.

The miniature SAM3's processor (``test_processor("hf-sam3")``: a ``Sam3Processor`` with
``byte_level_clip_tokenizer()``) is saved and reloaded as training saves it beside the
checkpoint, and its tokenizer is called as ``HFConceptSegmenter.tokenize`` calls it (padding to
32, truncation). One ``node`` run encodes every phrase; ids and attention masks must match.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOKENIZER_JS = ROOT / "samgap_lib" / "explorer" / "static" / "tokenizer.js"
NODE = shutil.which("node")

PHRASES = [
    "apple",
    "a red apple",
    "Red Apple",
    "RED APPLE ON THE TREE",
    "apple, pear; plum!",
    "don't it's we'll THEY'RE i'm you've he'd",
    "'quoted' \"double\" (paren) [bracket] {brace}",
    "3 apples",
    "apple 42 and 1.5 kg, 2024-06-01",
    "  leading and trailing  ",
    "many    spaces   between",
    "tab\tseparated\nnew line\r\nwindows",
    "nbsp\u00a0ideographic\u3000nel\u0085space",
    "bom\ufeffzero\u200bwidth",
    "pomme rouge, café, crème brûlée",
    "manzana, piña, año, ÑANDÚ",
    "decomposed e\u0301 and n\u0303",
    "Straße ΟΔΟΣ İstanbul",
    "苹果 和 梨",
    "りんご",
    "사과",
    "яблоко Яблоко",
    "تفاحة",
    "🍎 apple 🍐",
    "family 👨\u200d👩\u200d👧 flag 🇫🇷",
    "a<|endoftext|>b",
    "<|startoftext|>apple",
    "<|STARTOFTEXT|>",
    "...!!!???",
    "a very long phrase about a basket of ripe red apples and green pears on the table",
    "x" * 100,
    "é" * 40,
    "",
    "   ",
    "\t\n",
]


def _python_encodings(tmp_path: Path) -> list[dict[str, list[int]]]:
    from transformers import AutoProcessor

    from samgap_lib.models.archs import test_processor
    from samgap_lib.models.hf.sam3 import HFConceptSegmenter

    test_processor("hf-sam3", 224).save_pretrained(tmp_path)
    processor = AutoProcessor.from_pretrained(tmp_path)
    holder = SimpleNamespace(processor=processor, device="cpu")
    tok = HFConceptSegmenter.tokenize(holder, PHRASES)
    out = [
        {"input_ids": ids.tolist(), "attention_mask": mask.tolist()}
        for ids, mask in zip(tok["input_ids"], tok["attention_mask"], strict=True)
    ]
    # Sam3Processor(text=...) itself pads to 32 but does not truncate: same ids when they fit.
    for phrase, enc in zip(PHRASES, out, strict=True):
        direct = processor(text=phrase)
        if len(direct["input_ids"]) == 32:
            assert direct["input_ids"] == enc["input_ids"], phrase
            assert direct["attention_mask"] == enc["attention_mask"], phrase
    return out


def _js_encodings(tmp_path: Path) -> list[dict[str, list[int]]]:
    (tmp_path / "phrases.json").write_text(json.dumps(PHRASES), encoding="utf-8")
    script = (
        "const T = require(process.argv[1]);"
        "const phrases = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));"
        "process.stdout.write(JSON.stringify(phrases.map((p) => {"
        "  const e = T.encode(p);"
        "  return {input_ids: Array.from(e.input_ids), attention_mask: Array.from(e.attention_mask)};"
        "})));"
    )
    run = subprocess.run(
        [NODE, "-e", script, str(TOKENIZER_JS), str(tmp_path / "phrases.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.mark.skipif(NODE is None, reason="node is not on PATH: cannot run tokenizer.js")
def test_js_tokenizer_matches_python_processor(tmp_path):
    expected = _python_encodings(tmp_path / "processor")
    got = _js_encodings(tmp_path)
    assert len(got) == len(PHRASES)
    for phrase, e, g in zip(PHRASES, expected, got, strict=True):
        assert g["input_ids"] == e["input_ids"], f"input_ids differ for {phrase!r}"
        assert g["attention_mask"] == e["attention_mask"], f"attention_mask differs for {phrase!r}"
    # the list covers truncation, padding and the empty phrase
    lengths = [sum(e["attention_mask"]) for e in expected]
    assert max(lengths) == 32 and min(lengths) == 2
    assert all(len(e["input_ids"]) == 32 for e in expected)


@pytest.mark.skipif(NODE is None, reason="node is not on PATH: cannot run tokenizer.js")
def test_js_tokenizer_loads_as_a_plain_script():
    """Evaluated as a classic <script> (no module, no require): defines globalThis.SamgapTokenizer."""
    script = (
        "const vm = require('vm');"
        "const ctx = vm.createContext({});"
        "vm.runInContext(require('fs').readFileSync(process.argv[1], 'utf8'), ctx);"
        "const e = vm.runInContext('SamgapTokenizer.encode(\"Apple\")', ctx);"
        "process.stdout.write(JSON.stringify(Array.from(e.input_ids.slice(0, 8))));"
    )
    run = subprocess.run(
        [NODE, "-e", script, str(TOKENIZER_JS)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [512, 64, 79, 79, 75, 324, 513, 513]
