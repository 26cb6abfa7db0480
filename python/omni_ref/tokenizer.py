"""Word-level tokenizer (docs/model-folder.md): lowercase, words = /[a-z0-9]+/g,
ids = [bos, word ids (unk for unknown)], truncated to maxLength, padded with pad."""
from __future__ import annotations

import json
import re

import numpy as np

from .scenes import VOCAB_WORDS

MAX_LENGTH = 24
PAD_ID, UNK_ID, BOS_ID = 0, 1, 2
_WORD = re.compile(r"[a-z0-9]+")


class Tokenizer:
    def __init__(self, vocab: dict, max_length: int = MAX_LENGTH, pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID):
        self.vocab, self.max_length = vocab, max_length
        self.pad_id, self.unk_id, self.bos_id = pad_id, unk_id, bos_id

    @classmethod
    def default(cls) -> "Tokenizer":
        vocab = {"<pad>": PAD_ID, "<unk>": UNK_ID, "<bos>": BOS_ID}
        for w in VOCAB_WORDS:
            vocab[w] = len(vocab)
        return cls(vocab)

    @classmethod
    def load(cls, path: str) -> "Tokenizer":
        with open(path) as f:
            j = json.load(f)
        return cls(j["vocab"], j["maxLength"], j["padId"], j["unkId"], j["bosId"])

    def to_json(self) -> dict:
        return {"type": "word-level", "lowercase": True, "maxLength": self.max_length,
                "padId": self.pad_id, "unkId": self.unk_id, "bosId": self.bos_id, "vocab": self.vocab}

    def save(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump(self.to_json(), f, indent=1)
            f.write("\n")

    def encode(self, text: str) -> list:
        ids = [self.bos_id] + [self.vocab.get(w, self.unk_id) for w in _WORD.findall(text.lower())]
        ids = ids[: self.max_length]
        return ids + [self.pad_id] * (self.max_length - len(ids))

    def __call__(self, texts) -> np.ndarray:
        return np.array([self.encode(t) for t in texts], dtype=np.int64)
