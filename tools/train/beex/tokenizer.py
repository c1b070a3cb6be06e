"""bert-base-uncased WordPiece tokenizer (BasicTokenizer + greedy longest-match WordPiece).

Written from the published BERT algorithm so the trainer needs no pip package; the C# side
implements the same steps, and tests/fixtures/wordpiece holds reference ids to check both.
"""
import re
import unicodedata


def _is_whitespace(ch):
    if ch in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(ch) == "Zs"


def _is_control(ch):
    if ch in ("\t", "\n", "\r"):
        return False
    # Unassigned code points (Cn) are kept, as the reference (HF tokenizers) keeps them.
    return unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs")


def _is_punctuation(ch):
    cp = ord(ch)
    # BERT treats every non-alphanumeric ASCII character as punctuation (e.g. "$", "^", "`").
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


class WordPieceTokenizer:
    def __init__(self, vocab_path, lowercase=True, max_chars_per_word=100):
        with open(vocab_path, encoding="utf-8") as f:
            tokens = [line.rstrip("\n") for line in f]
        self.vocab = {t: i for i, t in enumerate(tokens)}
        self.inv_vocab = tokens
        self.lowercase = lowercase
        self.max_chars = max_chars_per_word
        self.cls_id = self.vocab["[CLS]"]
        self.sep_id = self.vocab["[SEP]"]
        self.unk_id = self.vocab["[UNK]"]
        self.pad_id = self.vocab["[PAD]"]

    def __len__(self):
        return len(self.inv_vocab)

    def basic_tokens(self, text):
        cleaned = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or _is_control(ch):
                continue
            if _is_whitespace(ch):
                cleaned.append(" ")
            elif _is_cjk(cp):
                cleaned.append(" " + ch + " ")
            else:
                cleaned.append(ch)
        words = "".join(cleaned).split()
        out = []
        for w in words:
            if self.lowercase:
                w = w.lower()
                w = "".join(c for c in unicodedata.normalize("NFD", w)
                            if unicodedata.category(c) != "Mn")
            cur = []
            for c in w:
                if _is_punctuation(c):
                    if cur:
                        out.append("".join(cur))
                        cur = []
                    out.append(c)
                else:
                    cur.append(c)
            if cur:
                out.append("".join(cur))
        return out

    def wordpiece(self, word):
        if len(word) > self.max_chars:
            return [self.unk_id]
        ids = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end]
                if start > 0:
                    piece = "##" + piece
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.unk_id]
            ids.append(found)
            start = end
        return ids

    SPECIAL = ("[CLS]", "[SEP]", "[UNK]", "[MASK]", "[PAD]")

    def pieces(self, text):
        """WordPiece ids of a text; special-token literals in the text map to their own ids."""
        out = []
        pattern = "(" + "|".join(re.escape(s) for s in self.SPECIAL) + ")"
        for part in re.split(pattern, text):
            if part in self.SPECIAL:
                out.append(self.vocab[part])
            elif part:
                for w in self.basic_tokens(part):
                    out.extend(self.wordpiece(w))
        return out

    def encode(self, text, max_len):
        """[CLS] pieces [SEP], pieces truncated so the whole fits in max_len."""
        pieces = self.pieces(text)
        pieces = pieces[: max_len - 2]
        return [self.cls_id] + pieces + [self.sep_id]
