"""orchard-tiny SAM3's phrase tokenizer as a table and a procedure the browser can repeat.

The checkpoint's tokenizer (`samgap_lib.models.archs.byte_level_clip_tokenizer`) is a CLIP
tokenizer without merges: every UTF-8 byte of a word is one token, its last byte the ``</w>``
form. `tokenizer_table` writes what the browser needs (the byte -> id map, the special ids, the
fixed length `TEXT_MAX_LENGTH` the processor pads to) and `encode_phrase` is the procedure in
plain Python, step by step as the JavaScript twin does it; the tests check it against the
transformers tokenizer on arbitrary text.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from ..models.archs import bytes_to_unicode
from ..models.hf.sam3 import TEXT_MAX_LENGTH

__all__ = ["SPECIAL_TOKENS", "TEXT_MAX_LENGTH", "WHITESPACE", "encode_phrase", "tokenizer_table"]

SPECIAL_TOKENS = ("<|startoftext|>", "<|endoftext|>")
# Unicode White_Space (what the tokenizer's regex \s means; JavaScript's \s differs: it has
# U+FEFF and lacks U+0085, so the browser uses this class, not \s)
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")
_WS_CLASS = (
    "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
)
# The pre-tokenizer's split pattern with \s spelled out (JavaScript: flags "gu"). Its
# byte-level step splits a match of a special-token literal again (GPT-2's pattern), into "<|",
# the name and "|>"; every other match it leaves whole.
SPLIT_PATTERN_JS = (
    "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|"
    f"[^{_WS_CLASS}\\p{{L}}\\p{{N}}]+"
)


def tokenizer_table(tokenizer: Any) -> dict[str, Any]:
    """The JSON the browser tokenizes with, read from the checkpoint's ``CLIPTokenizer``.

    Raises
    ------
    ValueError
        A tokenizer with merges (a real CLIP BPE): this table cannot express it.
    """
    vocab = tokenizer.get_vocab()
    byte_sym = bytes_to_unicode()
    try:
        ids = [vocab[byte_sym[b]] for b in range(256)]
        end_ids = [vocab[byte_sym[b] + "</w>"] for b in range(256)]
    except KeyError as exc:
        raise ValueError(
            f"the tokenizer has no byte-level symbol {exc}: not samgap's byte-level CLIP "
            "tokenizer (a BPE with merges needs the full tokenizer in the browser)."
        ) from exc
    if len(vocab) != 514:
        raise ValueError(
            f"the tokenizer has {len(vocab)} tokens, not 514: not samgap's byte-level CLIP "
            "tokenizer (a BPE with merges needs the full tokenizer in the browser)."
        )
    return {
        "type": "byte-level CLIP, no merges (samgap_lib.models.archs.byte_level_clip_tokenizer)",
        "max_length": TEXT_MAX_LENGTH,
        "bos_id": vocab[SPECIAL_TOKENS[0]],
        "eos_id": vocab[SPECIAL_TOKENS[1]],
        "pad_id": vocab[SPECIAL_TOKENS[1]],
        "special_tokens": {s: vocab[s] for s in SPECIAL_TOKENS},
        "byte_ids": ids,
        "byte_ids_end_of_word": end_ids,
        "whitespace": WHITESPACE,
        "split_pattern": SPLIT_PATTERN_JS,
        "split_flags": "gu",
        "steps": [
            "1. Cut the raw text at the literal special tokens '<|startoftext|>' and "
            "'<|endoftext|>' (leftmost first); each becomes its id; steps 2-5 run on the text "
            "between them.",
            "2. Normalise: Unicode NFC; every run of `whitespace` characters -> one space; "
            "lower-case code point by code point (Array.from(s, c => c.toLowerCase()), no "
            "final-sigma rule).",
            "3. Split: the matches of `split_pattern` (flags `split_flags`) are the words; what "
            "lies between them (whitespace) is dropped. A word that is '<|startoftext|>' or "
            "'<|endoftext|>' (typed in capitals, lower-cased in step 2) is three words: '<|', "
            "the name, '|>'.",
            "4. Each word -> its UTF-8 bytes -> ids: byte_ids[b] for every byte but the last, "
            "byte_ids_end_of_word[b] for the last.",
            "5. Keep the first max_length - 2 ids (of all words and special tokens together).",
            "6. input_ids = [bos_id] + ids + [eos_id], then pad_id up to max_length; "
            "attention_mask = 1 for bos..eos, 0 for the padding. Both int32 [1, max_length].",
        ],
    }


def _is_letter(c: str) -> bool:
    return unicodedata.category(c).startswith("L")


def _is_number(c: str) -> bool:
    return unicodedata.category(c).startswith("N")


def _words(text: str) -> list[str]:
    """Step 3: the split pattern's matches, leftmost first, alternatives in order."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        special = next((s for s in SPECIAL_TOKENS if text.startswith(s, i)), None)
        hit = next((s for s in _CONTRACTIONS if text.startswith(s, i)), None)
        if special is not None:  # the byte-level step's second split
            out += ["<|", special[2:-2], "|>"]
            i += len(special)
            continue
        if hit is not None:
            j = i + len(hit)
        elif _is_letter(c):
            j = i + 1
            while j < n and _is_letter(text[j]):
                j += 1
        elif _is_number(c):
            j = i + 1
        elif c in WHITESPACE:
            i += 1
            continue
        else:
            j = i + 1
            while j < n and not (
                text[j] in WHITESPACE or _is_letter(text[j]) or _is_number(text[j])
            ):
                j += 1
        out.append(text[i:j])
        i = j
    return out


def encode_phrase(phrase: str, table: dict[str, Any]) -> tuple[list[int], list[int]]:
    """``input_ids`` and ``attention_mask`` of ``phrase`` by the steps of ``table["steps"]``
    (what the browser does), equal to the transformers tokenizer's with
    ``padding="max_length", max_length=TEXT_MAX_LENGTH, truncation=True``."""
    special = table["special_tokens"]
    ids: list[int] = []
    rest = phrase
    while rest:
        cuts = [(rest.find(s), s) for s in SPECIAL_TOKENS if s in rest]
        at, tok = min(cuts) if cuts else (len(rest), None)
        text = unicodedata.normalize("NFC", rest[:at])
        spaced, prev_ws = [], False
        for c in text:
            if c in WHITESPACE:
                if not prev_ws:
                    spaced.append(" ")
                prev_ws = True
            else:
                spaced.append(c)
                prev_ws = False
        text = "".join(c.lower() for c in "".join(spaced))
        for word in _words(text):
            data = word.encode("utf-8")
            ids += [table["byte_ids"][b] for b in data[:-1]]
            ids.append(table["byte_ids_end_of_word"][data[-1]])
        if tok is not None:
            ids.append(special[tok])
            rest = rest[at + len(tok) :]
        else:
            rest = ""
    length = int(table["max_length"])
    body = [table["bos_id"], *ids[: length - 2], table["eos_id"]]
    mask = [1] * len(body) + [0] * (length - len(body))
    return body + [table["pad_id"]] * (length - len(body)), mask
