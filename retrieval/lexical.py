"""BM25 over chunks (bm25s), with Snowball stemming and English stop words."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

_WORD = re.compile(r"\w+", re.UNICODE)


@cache
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


@cache
def stop_words() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def terms(text: str) -> list[str]:
    """Lower-cased, stemmed content words of ``text`` (stop words dropped).

    The words are put in Unicode NFC first: "café" typed as "e" + a combining accent (NFD,
    as macOS file systems and some editors write it) is then the same word as the composed
    "é", and a combining mark no longer splits a word (``\\w`` does not match it). Only the
    terms are normalised, never the stored text, so offsets into the text stay exact.
    """
    words = [w for w in _WORD.findall(nfc(text).lower()) if w not in stop_words()]
    return _stemmer().stemWords(words)


def nfc(text: str) -> str:
    """``text`` in Unicode normal form C (a no-op, and cheap, for text already in it)."""
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


class LexicalIndex:
    """A BM25 index over a fixed list of texts: built in memory, or loaded from a snapshot
    (:meth:`save`, :meth:`load`) with its score matrix memory-mapped."""

    def __init__(self, texts: Sequence[str] | None = None) -> None:
        texts = texts or []
        self.size = len(texts)
        self._retriever = bm25s.BM25()
        # One string object per distinct term: 100k chunks hold millions of term occurrences,
        # and a list of references to shared strings is a fraction of a list of copies.
        interned: dict[str, str] = {}
        corpus = [[interned.setdefault(t, t) for t in terms(text)] for text in texts]
        self._empty = not any(corpus)
        df: dict[str, int] = {}
        for doc_terms in corpus:
            for t in set(doc_terms):
                df[t] = df.get(t, 0) + 1
        self.df = df
        if self.size and not self._empty:
            self._retriever.index(corpus, show_progress=False)

    def save(self, directory: Path) -> None:
        """Write the index to ``directory`` (bm25s's own files, plus the document frequencies
        and the size, which bm25s does not keep)."""
        directory.mkdir(parents=True, exist_ok=True)
        if self.size and not self._empty:
            self._retriever.save(str(directory), show_progress=False)
        meta = {"size": self.size, "empty": self._empty, "df": self.df}
        (directory / "lexical.json").write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        """The index :meth:`save` wrote; its score matrix is memory-mapped (read-only): a
        query reads only the columns of its own terms, so the index costs little resident
        memory however big the corpus is."""
        meta = json.loads((directory / "lexical.json").read_text(encoding="utf-8"))
        index = cls.__new__(cls)
        index.size = int(meta["size"])
        index._empty = bool(meta["empty"])
        index.df = {str(t): int(n) for t, n in meta["df"].items()}
        if index.size and not index._empty:
            index._retriever = bm25s.BM25.load(str(directory), mmap=True, show_progress=False)
            from retrieval.snapshot import random_access

            for array in index._retriever.scores.values():
                if isinstance(array, np.ndarray):
                    random_access(array)
            if int(index._retriever.scores["num_docs"]) != index.size:
                raise ValueError(f"the BM25 index in {directory} does not match its size")
        else:
            index._retriever = bm25s.BM25()
        return index

    def scores(self, query: str) -> np.ndarray:
        """The BM25 score of every text for ``query`` (zeros when nothing matches)."""
        q = [t for t in terms(query) if t in self._vocab]
        if not q or self._empty:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._retriever.get_scores(q), dtype=np.float32)

    def idf(self, term: str) -> float:
        """BM25's idf; a term the corpus never uses gets the idf of a term seen zero times."""
        df = self.df.get(term, 0)
        return float(np.log(1.0 + (self.size - df + 0.5) / (df + 0.5)))

    @property
    def _vocab(self) -> dict:
        return self._retriever.vocab_dict if not self._empty and self.size else {}
