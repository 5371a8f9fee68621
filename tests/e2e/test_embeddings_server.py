"""QABOT_EMBEDDINGS: embeddings from a server (OpenAI protocol, Ollama's API) through LangChain.

The real OpenAIEmbeddings / OllamaEmbeddings clients talk to a fake server on 127.0.0.1 whose
vectors are a hashed bag of words, so retrieval over them still works.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings as ChromaSettings
from typer.testing import CliRunner

from answering.background import background_file
from answering.pipeline import Pipeline
from bot.cli import app
from qabot.errors import EmbeddingError, StoreError
from qabot.settings import Settings
from retrieval import collection_record, embedders
from retrieval.embeddings import MODEL_ID
from tests.llm_servers import Fail, Hang, Malformed
from tests.llm_servers.embeddings import FakeEmbeddingServer, bag_of_words

PROTOCOLS = ("openai", "ollama")
KAKAPO = (
    "Kakapo notes.\n\nThe kakapo is a flightless parrot of New Zealand. "
    "Kakapo breed only in years when the rimu trees fruit heavily.\n"
)
LIGHTHOUSE = (
    "Lighthouse log.\n\nThe Tern Point lighthouse keeper winds the lamp clockwork at dusk. "
    "The lamp was converted to electricity in 1961.\n"
)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeEmbeddingServer]:
    with FakeEmbeddingServer(dimensions=64) as fake:
        yield fake


@pytest.fixture(autouse=True)
def fresh(server: FakeEmbeddingServer) -> Iterator[None]:
    server.script.clear()
    server.requests.clear()
    embedders._built.clear()  # every test builds its own client, with an empty vector cache
    yield
    embedders._built.clear()


def embed_settings(
    server: FakeEmbeddingServer, protocol: str = "openai", model: str = "fake-embed", **kw: Any
) -> Settings:
    base = f"{server.url}/v1" if protocol == "openai" else server.url
    values: dict[str, Any] = {
        "_env_file": None,
        "qabot_embeddings": f"{protocol}:{model}",
        "qabot_embeddings_base_url": base,
        "qabot_embeddings_timeout": 0.5,
        "qabot_embeddings_retries": 2,
        "qabot_embeddings_backoff": 0.01,
    }
    return Settings(**(values | kw))


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "kakapo.md").write_text(KAKAPO, encoding="utf-8")
    (folder / "lighthouse.txt").write_text(LIGHTHOUSE, encoding="utf-8")
    return folder


# ---- the client: batching, retries, timeout ----------------------------------------------------
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_passages_are_sent_in_batches_of_the_configured_size(server, protocol):
    embedder = embedders.select_embedder(embed_settings(server, protocol, qabot_embeddings_batch=3))
    texts = [f"text number {i} about {protocol}" for i in range(7)]
    vectors = embedder.passages(texts + [texts[0]])  # a repeat is not sent again
    assert server.sizes(protocol) == [3, 3, 1]
    assert vectors.shape == (8, 64) and embedder.dimensions == 64
    assert np.allclose(vectors[0], bag_of_words(texts[0], 64), atol=1e-6)
    assert np.allclose(vectors[7], vectors[0])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    embedder.passages(texts[:4])  # cached: no request
    assert len(server.requests) == 3
    assert np.allclose(embedder.query("text number 3"), bag_of_words("text number 3", 64))
    assert {r["model"] for r in server.requests} == {"fake-embed"}


def test_openai_requests_carry_floats_and_the_prefixes(server):
    settings = embed_settings(
        server, qabot_embeddings_query_prefix="query: ", qabot_embeddings_passage_prefix="passage: "
    )
    embedder = embedders.select_embedder(settings)
    embedder.passages(["a kakapo"])
    embedder.query("which parrot?")
    bodies = [r["body"] for r in server.requests]
    assert bodies[0]["input"] == ["passage: a kakapo"] and bodies[1]["input"] == [
        "query: which parrot?"
    ]
    assert all(b.get("encoding_format") == "float" for b in bodies)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_transient_failure_is_retried_then_succeeds(server, protocol, status):
    embedder = embedders.select_embedder(embed_settings(server, protocol))
    server.queue(Fail(status))
    vectors = embedder.passages(["the rimu trees fruit"])
    assert len(server.requests) == 2
    assert np.allclose(vectors[0], bag_of_words("the rimu trees fruit", 64), atol=1e-6)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_server_that_hangs_times_out_with_one_line(server, protocol):
    embedder = embedders.select_embedder(
        embed_settings(server, protocol, qabot_embeddings_retries=1)
    )
    server.queue(Hang(5), Hang(5))
    start = time.monotonic()
    with pytest.raises(EmbeddingError) as caught:
        embedder.passages(["never answered"])
    elapsed = time.monotonic() - start
    message = str(caught.value)
    assert len(server.requests) == 2 and elapsed < 3.0  # two attempts of 0.5 s, not 5 s
    assert "\n" not in message and "did not answer within 0.5 s" in message
    assert f"{protocol}:fake-embed" in message and server.url in message


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_client_error_is_not_retried_and_a_bad_reply_is_named(server, protocol):
    embedder = embedders.select_embedder(embed_settings(server, protocol))
    server.queue(Fail(400, "input too long"))
    with pytest.raises(EmbeddingError, match="HTTP 400") as caught:
        embedder.passages(["too long"])
    assert len(server.requests) == 1 and "\n" not in str(caught.value)
    server.queue(Malformed())
    with pytest.raises(EmbeddingError, match="not one vector of numbers per text"):
        embedder.passages(["one", "two"])


def test_the_selection_is_checked_at_start(server):
    with pytest.raises(EmbeddingError, match="Unknown QABOT_EMBEDDINGS 'word2vec:x'"):
        Pipeline(Settings(_env_file=None, qabot_embeddings="word2vec:x"))
    with pytest.raises(EmbeddingError, match="needs a model name"):
        Pipeline(Settings(_env_file=None, qabot_embeddings="ollama"))
    with pytest.raises(EmbeddingError, match="QABOT_EMBEDDINGS_BASE_URL"):
        Pipeline(Settings(_env_file=None, qabot_embeddings="openai:x"))
    # OPENAI_BASE_URL is the fallback for the address
    fallback = Settings(
        _env_file=None, qabot_embeddings="openai:x", openai_base_url=f"{server.url}/v1"
    )
    assert embedders.where(fallback) == f"{server.url}/v1"
    assert embedders.model_id(Settings(_env_file=None)) == MODEL_ID


# ---- the pipeline over server embeddings --------------------------------------------------------
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_ingest_and_ask_with_server_embeddings(server, docs, tmp_path, protocol):
    settings = embed_settings(
        server, protocol, qabot_data_dir=tmp_path / "data", qabot_embeddings_batch=16
    )
    pipeline = Pipeline(settings)
    report = pipeline.ingest([docs])
    assert sorted(Path(s).name for s in report.added) == ["kakapo.md", "lighthouse.txt"]
    assert server.requests and max(server.sizes()) <= 16
    answer = pipeline.ask("When do kakapo breed?")
    assert not answer.abstained and "rimu trees" in answer.text
    assert answer.citations[0].source.endswith("kakapo.md")
    # the collection records the model and the dimension the server gave
    for collection in (pipeline.store.chunks, pipeline.store.sentences):
        assert collection.metadata[collection_record.MODEL_KEY] == f"{protocol}:fake-embed"
        assert collection.metadata[collection_record.DIMENSIONS_KEY] == 64
    # the answerer's background vectors are this model's, in a file of their own
    data = tmp_path / "data"
    own = data / background_file(f"{protocol}:fake-embed")
    assert own.exists() and np.load(own).shape[1] == 64
    assert not (data / "background-e5.npy").exists()
    assert background_file(MODEL_ID) == "background-e5.npy"


def test_a_collection_refuses_vectors_of_another_model_until_rebuilt(server, docs, tmp_path):
    data = tmp_path / "data"
    first = Pipeline(embed_settings(server, model="model-a", qabot_data_dir=data))
    first.ingest([docs])
    other = Pipeline(embed_settings(server, model="model-b", qabot_data_dir=data))
    with pytest.raises(StoreError) as caught:
        _ = other.store
    message = str(caught.value)
    assert "\n" not in message
    assert "built with the embedding model openai:model-a, not openai:model-b" in message
    assert "qabot ingest --rebuild" in message
    with pytest.raises(StoreError, match="model-a"):
        other.ask("When do kakapo breed?")

    report = other.ingest([docs], rebuild=True)
    assert len(report.added) == 2 and not report.unchanged
    assert other.store.chunks.metadata[collection_record.MODEL_KEY] == "openai:model-b"
    assert "rimu" in other.ask("When do kakapo breed?").text
    again = Pipeline(embed_settings(server, model="model-a", qabot_data_dir=data))
    with pytest.raises(StoreError, match="built with the embedding model openai:model-b"):
        _ = again.store
    # another collection in the same data directory is free to use another model
    Pipeline(embed_settings(server, model="model-a", qabot_data_dir=data), collection="b").ingest(
        [docs]
    )


def test_a_collection_from_before_the_record_counts_as_e5(server, tmp_path):
    data = tmp_path / "data"
    client = chromadb.PersistentClient(
        path=str(data / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
    )
    old = client.get_or_create_collection("qabot-default-chunks", metadata={"hnsw:space": "cosine"})
    old.upsert(ids=["x"], embeddings=[[0.1] * 384], metadatas=[{"source": "old.txt"}])
    with pytest.raises(StoreError, match=f"built with the embedding model {MODEL_ID}"):
        _ = Pipeline(embed_settings(server, qabot_data_dir=data)).store


def test_cli_one_line_refusal_then_rebuild(server, docs, tmp_path, monkeypatch):
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QABOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("QABOT_EMBEDDINGS_BASE_URL", f"{server.url}/v1")
    monkeypatch.setenv("QABOT_EMBEDDINGS_BACKOFF", "0")
    monkeypatch.setenv("QABOT_EMBEDDINGS", "openai:model-a")
    assert runner.invoke(app, ["ingest", str(docs)]).exit_code == 0
    monkeypatch.setenv("QABOT_EMBEDDINGS", "openai:model-b")
    refused = runner.invoke(app, ["ask", "When do kakapo breed?"])
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert refused.stderr.count("\n") <= 2 and "--rebuild" in refused.stderr
    rebuilt = runner.invoke(app, ["ingest", "--rebuild", str(docs)])
    assert rebuilt.exit_code == 0, rebuilt.output
    answered = runner.invoke(app, ["ask", "When do kakapo breed?", "--json"])
    assert answered.exit_code == 0 and "rimu" in answered.stdout
    listed = runner.invoke(app, ["backends"])
    assert "QABOT_EMBEDDINGS" in listed.stdout and "openai:model-b" in listed.stdout
