"""Loading .txt, .md, .html and .pdf files, and reporting the files that cannot be read."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.loaders import LoadError, load_path, load_paths


def make_pdf(path: Path, text: str) -> None:
    """Write a one-page PDF whose text layer holds ``text`` (Helvetica, one line)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    path.write_bytes(bytes(out))


def test_text_markdown_and_crlf(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"First line.\r\nSecond line.\r\n")
    (tmp_path / "b.md").write_text("# Title\n\nSome *markdown* text.", encoding="utf-8")
    assert load_path(tmp_path / "a.txt").text == "First line.\nSecond line.\n"
    assert "Some *markdown* text." in load_path(tmp_path / "b.md").text


def test_html_keeps_visible_text_only(tmp_path):
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head><title>T</title><style>p{color:red}</style></head><body>"
        "<script>alert('x')</script><h1>Launch plans</h1><p>The rocket flies in <b>May</b>.</p>"
        "</body></html>",
        encoding="utf-8",
    )
    text = load_path(page).text
    assert "Launch plans" in text and "May" in text
    assert "alert" not in text and "color" not in text


def test_pdf_text_layer(tmp_path):
    make_pdf(tmp_path / "doc.pdf", "The station orbits Earth every ninety minutes.")
    assert "ninety minutes" in load_path(tmp_path / "doc.pdf").text


def test_latin1_text_is_decoded(tmp_path):
    path = tmp_path / "legacy.txt"
    path.write_bytes("Café crème à la gare, déjà vu, naïve façade.".encode("cp1252") * 5)
    assert "Café crème" in load_path(path).text


@pytest.mark.parametrize(
    "name,data,reason",
    [
        ("blob.txt", bytes(range(256)) * 40, "binary"),
        ("image.pdf", b"%PDF-1.4 garbage \x00\x01\x02 not a pdf", "PDF"),
        ("empty.md", b"   \n\n", "no text"),
        ("noise.txt", bytes([0x81, 0x8D, 0x8F, 0x90, 0x9D] * 200), "encoding"),
    ],
)
def test_unreadable_files_are_reported_and_skipped(tmp_path, name, data, reason):
    (tmp_path / name).write_bytes(data)
    (tmp_path / "good.txt").write_text("A readable document.", encoding="utf-8")
    results = {Path(r.path).name: r for r in load_paths([tmp_path])}
    assert results["good.txt"].document is not None
    assert results[name].document is None
    assert reason.lower() in (results[name].error or "").lower()
    with pytest.raises(LoadError):
        load_path(tmp_path / name)


def test_directory_walk_is_recursive_and_skips_hidden_and_unknown(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "deeper" / "x.md").write_text("deep file", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "y.txt").write_text("hidden", encoding="utf-8")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    found = [Path(r.path).name for r in load_paths([tmp_path])]
    assert found == ["x.md"]
