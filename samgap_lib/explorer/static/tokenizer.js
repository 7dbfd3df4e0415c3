/*
 * samgap explorer: the miniature SAM3's byte-level CLIP tokenizer in plain JavaScript.
 *
 * A twin of what samgap_lib feeds the text encoder of the orchard-tiny SAM3
 * (HFConceptSegmenter.tokenize: the checkpoint's CLIPTokenizer called with
 * padding="max_length", max_length=32, truncation=True), checked id for id by
 * tests/test_explorer_tokenizer.py. The tokenizer is samgap_lib.models.archs.
 * byte_level_clip_tokenizer(): 514 ids, no BPE merges, so every id is computable and no
 * vocabulary file is needed:
 *
 *   ids 0..255    the 256 bytes, in the order of GPT-2's bytes_to_unicode() table
 *                 (bytes 33-126, 161-172, 174-255 first, then the other 68 bytes ascending)
 *   ids 256..511  the same bytes as the last byte of a word ("</w>" form): id + 256
 *   512           <|startoftext|> (always first)
 *   513           <|endoftext|>   (always after the last token; also the padding id)
 *
 * Steps, as the Hugging Face `tokenizers` pipeline of that tokenizer runs them:
 *   1. The literal strings "<|startoftext|>" and "<|endoftext|>" in the raw phrase are the
 *      special ids 512 and 513 (added tokens, matched before normalisation, case-sensitive).
 *   2. Each other stretch is normalised: Unicode NFC, whitespace runs to one space, lower case
 *      code point by code point (so a final capital sigma becomes "σ", not "ς").
 *   3. Split into words with CLIP's pattern ('s|'t|'re|'ve|'m|'ll|'d|letters+|one digit|a run
 *      of other non-space characters); whitespace is dropped. Each word is split again with
 *      GPT-2's pattern (this only matters for a lower-cased "<|startoftext|>" typed in
 *      capitals, which becomes "<|", "startoftext", "|>").
 *   4. Each word becomes its UTF-8 bytes, one id each; the last byte uses its "</w>" id.
 *   5. [512] + ids truncated to 30 + [513], padded with 513 to 32; attention_mask is 1 on the
 *      real tokens (start and end included) and 0 on the padding.
 *
 * Whitespace is Unicode's White_Space property (as Oniguruma's \s in `tokenizers`): it
 * includes U+0085 and excludes U+FEFF, U+200B and U+180E, unlike JavaScript's \s.
 * A lone UTF-16 surrogate (which Python could not pass to the tokenizer) is encoded as U+FFFD.
 * Letters and digits are Unicode \p{L} and \p{N} of the JavaScript engine's Unicode version.
 *
 * Use: <script src="tokenizer.js"></script> then SamgapTokenizer.encode("red apple"), or
 * require("./tokenizer.js").encode(...) in node. encode returns
 * {input_ids: Int32Array(32), attention_mask: Int32Array(32)}; the explorer's sam3_text graph
 * takes them as int32 tensors as they are: new ort.Tensor("int32", ids, [1, 32]).
 */
(function (root, factory) {
  "use strict";
  var api = factory();
  if (typeof module === "object" && module && module.exports) {
    module.exports = api;
  }
  if (root) {
    root.SamgapTokenizer = api;
  }
})(typeof globalThis !== "undefined" ? globalThis : typeof self !== "undefined" ? self : this, function () {
  "use strict";

  var MAX_LENGTH = 32;
  var BOS = 512;
  var EOS = 513;
  var PAD = 513;
  var WORD_END = 256; // offset of a byte's "</w>" id
  var SPECIAL = { "<|startoftext|>": BOS, "<|endoftext|>": EOS };

  // GPT-2's bytes_to_unicode() order: the id of byte b is its position in this list.
  var BYTE_ID = new Int32Array(256);
  (function () {
    var order = [];
    var b;
    for (b = 33; b <= 126; b++) order.push(b);
    for (b = 161; b <= 172; b++) order.push(b);
    for (b = 174; b <= 255; b++) order.push(b);
    var seen = {};
    for (var i = 0; i < order.length; i++) seen[order[i]] = true;
    for (b = 0; b < 256; b++) if (!seen[b]) order.push(b);
    for (i = 0; i < 256; i++) BYTE_ID[order[i]] = i;
  })();

  // Unicode White_Space (what Oniguruma's \s matches in the `tokenizers` regexes).
  var WS = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
  var WS_RUN = new RegExp("[" + WS + "]+", "g");
  var OTHER = "[^" + WS + "\\p{L}\\p{N}]+";
  // CLIP's pre-tokenizer pattern (matches kept, the rest dropped) ...
  var CLIP_SPLIT = new RegExp(
    "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|" + OTHER,
    "gu"
  );
  // ... then GPT-2's byte-level pattern on each piece (pieces hold no whitespace, so the
  // optional leading space and the whitespace alternatives of GPT-2's pattern never apply).
  var GPT2_SPLIT = new RegExp("'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}+|" + OTHER, "gu");

  function lowerCase(s) {
    // Rust's char::to_lowercase, one code point at a time (no final-sigma context).
    var out = "";
    for (var ch of s) out += ch.toLowerCase();
    return out;
  }

  function normalize(s) {
    return lowerCase(s.normalize("NFC").replace(WS_RUN, " "));
  }

  function utf8(word) {
    var bytes = [];
    for (var i = 0; i < word.length; i++) {
      var c = word.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < word.length) {
        var d = word.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
        }
      }
      if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // lone surrogate
      if (c < 0x80) bytes.push(c);
      else if (c < 0x800) bytes.push(0xc0 | (c >> 6), 0x80 | (c & 63));
      else if (c < 0x10000) bytes.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      else
        bytes.push(
          0xf0 | (c >> 18),
          0x80 | ((c >> 12) & 63),
          0x80 | ((c >> 6) & 63),
          0x80 | (c & 63)
        );
    }
    return bytes;
  }

  function wordIds(word, ids) {
    var bytes = utf8(word);
    for (var i = 0; i < bytes.length; i++) {
      ids.push(BYTE_ID[bytes[i]] + (i === bytes.length - 1 ? WORD_END : 0));
    }
  }

  function textIds(text, ids) {
    var pieces = normalize(text).match(CLIP_SPLIT) || [];
    for (var i = 0; i < pieces.length; i++) {
      var words = pieces[i].match(GPT2_SPLIT) || [];
      for (var j = 0; j < words.length; j++) wordIds(words[j], ids);
    }
  }

  /** Token ids of a phrase without start/end tokens, truncation or padding. */
  function tokenize(phrase) {
    var ids = [];
    var parts = String(phrase).split(/(<\|startoftext\|>|<\|endoftext\|>)/);
    for (var i = 0; i < parts.length; i++) {
      if (i % 2 === 1) ids.push(SPECIAL[parts[i]]);
      else if (parts[i]) textIds(parts[i], ids);
    }
    return ids;
  }

  /**
   * {input_ids, attention_mask} of one phrase, each an Int32Array of maxLength (default 32):
   * what the Python processor gives with padding="max_length", max_length=32, truncation=True.
   */
  function encode(phrase, maxLength) {
    var n = maxLength === undefined ? MAX_LENGTH : maxLength;
    if (!(n >= 2)) throw new RangeError("maxLength must be at least 2");
    var body = tokenize(phrase).slice(0, n - 2);
    var inputIds = new Int32Array(n).fill(PAD);
    var mask = new Int32Array(n);
    inputIds[0] = BOS;
    for (var i = 0; i < body.length; i++) inputIds[i + 1] = body[i];
    inputIds[body.length + 1] = EOS;
    mask.fill(1, 0, body.length + 2);
    return { input_ids: inputIds, attention_mask: mask };
  }

  return {
    encode: encode,
    tokenize: tokenize,
    normalize: normalize,
    MAX_LENGTH: MAX_LENGTH,
    BOS_ID: BOS,
    EOS_ID: EOS,
    PAD_ID: PAD,
    VOCAB_SIZE: 514,
  };
});
