"""BM25 over chunks (bm25s), with Snowball stemming and English stop words."""

from __future__ import annotations

import json
import re
import unicodedata
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
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
        self.df: dict[str, int] = {}
        self._empty = not _index(self._retriever, texts, self.df)

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


_BLOCK = 1 << 18  # index entries scored and placed per numpy pass


def _index(retriever: bm25s.BM25, texts: Iterable[str], df: dict[str, int]) -> bool:
    """Index ``texts`` into ``retriever`` (a default ``bm25s.BM25``) as its ``index`` would
    from their :func:`terms`, and count each term's documents into ``df``; false when no
    text has a term (nothing is indexed then).

    The same index, array for array, as ``retriever.index([terms(t) for t in texts])``, but
    built a text at a time: that call wants every text's term list at once, then a list of
    term ids per text, then arrays of every entry and their sorted copies (+262 MB at 100k
    chunks, 4.35M entries). Here a text leaves only its distinct term ids and their counts,
    in two flat arrays (8 bytes an entry), and the matrix is filled a block of entries at a
    time (+94 MB). The scores are computed with bm25s's own formulas, on the same float32
    and float64 values in the same order, so every score is the same bits.
    """
    unique: set[str] = set()  # filled as bm25s fills it: its order is the term ids
    first: dict[str, int] = {}  # a provisional id per term, in order of first use
    entry_term = array("i")  # per (text, distinct term): the term's provisional id
    entry_tf = array("i")  # and how often the text uses it
    distinct = array("q")  # distinct terms per text
    lengths = array("q")  # terms per text
    for text in texts:
        words = terms(text)
        unique.update(words)
        for t in set(words):  # the order the list-of-lists build counted them in
            df[t] = df.get(t, 0) + 1
        counts = Counter(words)
        for t in counts:
            if t not in first:
                first[t] = len(first)
        entry_term.extend([first[t] for t in counts])
        entry_tf.extend(counts.values())
        distinct.append(len(counts))
        lengths.append(len(words))
    if not unique:
        return False
    # bm25s's own build_index_from_tokens and build_index_from_ids, array by array.
    vocab = {token: i for i, token in enumerate(unique)}
    n_docs, n_vocab = len(lengths), len(vocab)
    final = np.fromiter((vocab[t] for t in first), dtype=np.int32, count=len(first))
    del first
    term = np.frombuffer(entry_term, dtype=np.int32)
    tf = np.frombuffer(entry_tf, dtype=np.int32)
    n = len(term)
    doc_len = np.frombuffer(lengths, dtype=np.int64)
    avg_doc_len = np.array(doc_len.tolist()).mean()
    first_entry = np.zeros(n_docs + 1, dtype=np.int64)  # text d's entries: [d] .. [d + 1]
    np.cumsum(np.frombuffer(distinct, dtype=np.int64), out=first_entry[1:])
    col_counts = np.zeros(n_vocab, dtype=np.int64)  # each term's document frequency
    for a in range(0, n, _BLOCK):
        col_counts += np.bincount(final[term[a : a + _BLOCK]], minlength=n_vocab)
    compute_idf = bm25s.scoring._select_idf_scorer(retriever.idf_method)
    idf = np.zeros(n_vocab, dtype=retriever.dtype)
    for token_id, df_ in enumerate(col_counts.tolist()):
        if df_:
            idf[token_id] = compute_idf(df_, N=n_docs)
    tfc = bm25s.scoring._select_tfc_scorer(retriever.method)
    # Column-major (bm25s's CSC): by term, and by text within a term. The entries come text
    # by text, so each goes to the next free place of its term's column.
    indptr = np.zeros(n_vocab + 1, dtype=np.int64)
    np.cumsum(col_counts, out=indptr[1:])
    free = indptr[:-1].copy()
    data = np.empty(n, dtype=retriever.dtype)
    indices = np.empty(n, dtype=retriever.int_dtype)
    for a in range(0, n, _BLOCK):
        b = min(a + _BLOCK, n)
        cols = final[term[a:b]]
        docs = np.searchsorted(first_entry, np.arange(a, b), side="right") - 1
        scores = idf[cols] * tfc(
            tf_array=tf[a:b].astype(retriever.dtype),
            l_d=doc_len[docs],
            l_avg=avg_doc_len,
            k1=retriever.k1,
            b=retriever.b,
            delta=retriever.delta,
        )
        order = np.argsort(cols, kind="stable")  # by term, in text order within one
        cols = cols[order]
        starts = np.flatnonzero(np.concatenate(([True], cols[1:] != cols[:-1])))
        runs = np.diff(np.append(starts, len(cols)))
        place = free[cols] + np.arange(len(cols)) - np.repeat(starts, runs)
        free[cols[starts]] += runs
        data[place] = scores[order]
        indices[place] = docs[order]
    del term, tf, entry_term, entry_tf
    retriever.scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": n_docs}
    retriever.nonoccurrence_array = None
    if "" not in vocab:
        vocab[""] = max(vocab.values()) + 1
    retriever.vocab_dict = vocab
    retriever.unique_token_ids_set = set(vocab.values())
    return True
