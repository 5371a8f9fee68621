"""A sentence that leans on the one before ("His predecessor, ...") is also embedded with it:
what the two state together is what a question about it is close to."""

from __future__ import annotations

import numpy as np
import pytest

from answering.pipeline import Pipeline
from qabot.settings import Settings
from retrieval.collection_record import ALONE, LEANING_KEY, WITH_PREVIOUS
from retrieval.copying import copy_collection
from retrieval.embeddings import get_embedder
from retrieval.sentences import sentence_spans, stated_span
from retrieval.store import Store, is_stated, stated_id

TEXT = (
    "Yuri Borisov became director-general of Roscosmos in July. "
    "His predecessor, Dmitry Rogozin, often threatened to leave the station. "
    "The station orbits Earth every 90 minutes. "
    "Several times, it was hit by debris. "
    "Kathy Lueders heads NASA's human spaceflight program."
)


@pytest.fixture
def docs(tmp_path):
    target = tmp_path / "docs"
    target.mkdir()
    (target / "roscosmos.txt").write_text(TEXT, encoding="utf-8")
    return target


def rows(pipeline: Pipeline) -> dict[str, tuple[dict, np.ndarray]]:
    got = pipeline.store.sentences.get(include=["metadatas", "embeddings"])
    vectors = np.asarray(got["embeddings"], dtype=np.float32)
    return {i: (m, v) for i, m, v in zip(got["ids"], got["metadatas"], vectors, strict=True)}


def test_what_a_leaning_sentence_states_is_the_pair() -> None:
    spans = sentence_spans(TEXT)
    said = [stated_span(spans, i, TEXT) for i in range(len(spans))]
    assert said[0] is None  # the first sentence has none before it
    assert said[1] == (spans[0][0], spans[1][1])  # "His predecessor": whose is in the one before
    assert said[2] is None
    assert said[3] == (spans[2][0], spans[3][1])  # "Several times, it": after a fronted phrase
    assert said[4] is None


def test_a_leaning_sentence_is_stored_with_the_one_before_and_is_no_sentence_itself(
    tmp_path, docs, monkeypatch
) -> None:
    pipeline = Pipeline(Settings(qabot_data_dir=tmp_path / "data", _env_file=None))
    pipeline.ingest([docs])
    assert pipeline.store.leaning_sentences == WITH_PREVIOUS
    stored = rows(pipeline)
    pairs = {i: row for i, row in stored.items() if is_stated(i)}
    spans = sentence_spans(TEXT)
    # One row per sentence, and one per leaning sentence for the pair: the pair's span, its
    # vector the model's embedding of exactly that text.
    assert len(stored) == len(spans) + 2 and len(pairs) == 2
    by_start = {m["start"]: (i, m) for i, (m, _) in stored.items() if not is_stated(i)}
    for i in (1, 3):
        sentence_id, _ = by_start[spans[i][0]]
        meta, vector = pairs[stated_id(sentence_id)]
        assert (meta["start"], meta["end"]) == (spans[i - 1][0], spans[i][1])
        direct = get_embedder().passages([TEXT[meta["start"] : meta["end"]]])[0]
        assert float(vector @ direct) > 0.9999
    # The corpus's sentences are the sentences: a pair row is none.
    assert [(r.start, r.end) for r in pipeline.store.all_sentences()] == spans
    corpus = pipeline.corpus()  # from a snapshot
    assert corpus.sentences_in(pipeline.store.sources().popitem()[0], 0, len(TEXT)) == sorted(
        pipeline.store.all_sentences(), key=lambda r: r.start
    )
    # ... and the snapshot serves the pairs' vectors by id itself, as the store does.
    ids = list(pairs)
    want = pipeline.store.sentence_vectors(ids)

    def refuse(*args, **kwargs):
        raise AssertionError("the snapshot asked the store")

    monkeypatch.setattr(Store, "sentence_vectors", refuse)
    got = corpus.sentence_vectors(ids)
    monkeypatch.undo()
    assert np.allclose(got, want) and np.all(np.linalg.norm(got, axis=1) > 0.99)
    # A second ingest finds the document complete, pairs included: nothing is written.
    report = pipeline.ingest([docs])
    assert report.unchanged and not report.updated


def test_a_question_about_what_only_the_pair_says_is_answered(seeds_pipeline) -> None:
    """ "Several times, his predecessor as chairman of Roscosmos, Dmitry Rogozin, ..." after a
    sentence about Borisov: alone, the sentence never says whose predecessor; with the one
    before, it is closer to the question than any sentence about Borisov alone."""
    answer = seeds_pipeline.ask("Wer war Borisovs Vorgänger als Chef von Roskosmos?")
    assert answer.text.startswith("Dmitry Rogozin ["), answer.text


def test_a_collection_built_before_keeps_embedding_sentences_alone(tmp_path, docs) -> None:
    """Pairs in some documents and not in others would rank a document by when it was
    ingested: a collection that holds sentences and no record keeps the old way, a rebuild
    takes the new one, and a copy keeps its original's."""
    data = tmp_path / "data"
    pipeline = Pipeline(Settings(qabot_data_dir=data, _env_file=None))
    pipeline.ingest([docs])
    sentences = pipeline.store.sentences
    meta = {k: v for k, v in (sentences.metadata or {}).items() if not k.startswith("hnsw:")}
    meta.pop(LEANING_KEY)
    sentences.modify(metadata=meta)
    sentences.delete(ids=[i for i in rows(pipeline) if is_stated(i)])  # as built before
    reopened = Pipeline(Settings(qabot_data_dir=data, _env_file=None))
    assert reopened.store.leaning_sentences == ALONE
    (docs / "more.txt").write_text("It was launched in 1998. They said so.", encoding="utf-8")
    reopened.ingest([docs])
    assert not any(is_stated(i) for i in rows(reopened))
    # The answerer reads no pair vector there, and still answers from the sentences.
    answer = reopened.ask("Who was Borisov's predecessor?")
    assert "Rogozin" in " ".join(c.excerpt for c in answer.citations)
    client = reopened.store._client
    copy_collection(client, "default", "copy", data, "embedded")
    copied = Pipeline(Settings(qabot_data_dir=data, qabot_collection="copy", _env_file=None))
    assert copied.store.leaning_sentences == ALONE
    reopened.ingest([docs], rebuild=True)
    assert reopened.store.leaning_sentences == WITH_PREVIOUS
    assert sum(is_stated(i) for i in rows(reopened)) == 3  # "His", "it", "They"
