"""Citations point where they say: BOMs, a stray bad byte, NFD text (issue 14, items 4-6)."""

from __future__ import annotations

import unicodedata

from answering.abstention import absent_names
from answering.pipeline import Pipeline
from qabot.settings import Settings
from retrieval.lexical import LexicalIndex
from retrieval.loaders import load_path


def test_a_bom_file_has_offsets_into_what_open_reads(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    path = docs / "bom.txt"
    path.write_bytes(
        "\ufeffThe observatory opens at dusk.\r\nIts telescope has a 2-metre mirror.\n".encode()
    )
    expected = open(path, encoding="utf-8").read()  # noqa: SIM115 - what the README promises
    assert load_path(path).text == expected
    pipeline = Pipeline(Settings(qabot_data_dir=tmp_path / "data", _env_file=None))
    pipeline.ingest([docs])
    answer = pipeline.ask("How big is the telescope's mirror?")
    assert answer.citations and not answer.abstained
    for c in answer.citations:
        assert expected[c.start : c.end] == c.excerpt
        assert not c.excerpt.startswith("\ufeff")
    first = pipeline.ask("When does the observatory open?")
    for c in first.citations:
        assert expected[c.start : c.end] == c.excerpt


def test_one_bad_byte_does_not_turn_utf8_into_mojibake(tmp_path):
    path = tmp_path / "menu.txt"
    body = "Le café crème coûte deux euros à la gare. " * 30
    data = body.encode("utf-8")
    data = data[:200] + b"\xff" + data[200:]
    path.write_bytes(data)
    text = load_path(path).text
    assert "café crème" in text and "Ã" not in text
    assert text.count("\ufffd") == 1
    assert text == open(path, encoding="utf-8", errors="replace").read()  # noqa: SIM115


def test_legacy_8bit_text_is_still_detected(tmp_path):
    path = tmp_path / "legacy.txt"
    path.write_bytes("Le café est fermé le lundi, à cause du marché.".encode("cp1252"))
    assert "café est fermé" in load_path(path).text


def test_nfd_documents_match_nfc_questions():
    nfd = unicodedata.normalize("NFD", "The Café Zoë in Malmö opens at eight.")
    lexical = LexicalIndex([nfd, "Unrelated text about trains."])
    question = unicodedata.normalize("NFC", "When does Café Zoë in Malmö open?")
    assert absent_names(question, lexical) == []
    assert lexical.scores(question)[0] > 0
    # And the other way round: an NFD question over NFC text.
    nfc_index = LexicalIndex([unicodedata.normalize("NFC", nfd)])
    assert absent_names(unicodedata.normalize("NFD", question), nfc_index) == []


def test_nfd_document_is_answered_with_exact_offsets(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    text = unicodedata.normalize("NFD", "Café Zoë in Malmö opens at eight every morning.")
    (docs / "cafe.txt").write_text(text, "utf-8")
    pipeline = Pipeline(Settings(qabot_data_dir=tmp_path / "data", _env_file=None))
    pipeline.ingest([docs])
    answer = pipeline.ask(unicodedata.normalize("NFC", "When does Café Zoë open?"))
    assert not answer.abstained and "eight" in answer.text
    for c in answer.citations:
        assert open(docs / "cafe.txt", encoding="utf-8").read()[c.start : c.end] == c.excerpt  # noqa: SIM115
