"""Web pages as documents: a page, a crawl, sitemaps, robots.txt, conditional re-fetch, removal.

The real httpx client against a small site on 127.0.0.1 (tests/fake_site.py), ingested by the
real pipeline into a real Chroma store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from answering.pipeline import Pipeline
from bot.cli import app
from qabot.errors import InputError
from qabot.settings import Settings
from retrieval.web import USER_AGENT, WebRequest, normalise_url, split_sources
from tests.fake_site import FakeSite


@pytest.fixture
def site() -> Iterator[FakeSite]:
    with FakeSite() as fake:
        yield fake


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    settings = Settings(_env_file=None, qabot_data_dir=tmp_path / "data", qabot_web_timeout=0.5)
    return Pipeline(settings)


def stored_text(pipeline: Pipeline, source: str) -> str:
    """The stored chunks of ``source`` (overlaps repeated: for "is it there" checks)."""
    return " ".join(pipeline.store.chunks.get(where={"source": source})["documents"])


def pages(site: FakeSite, *names: str) -> set[str]:
    return {f"{site.url}/docs/{n}" for n in names}


def test_one_page_is_ingested_and_cited_by_its_url(site, pipeline):
    url = f"{site.url}/docs/a.html"
    report = pipeline.ingest([], web=WebRequest((url,)))
    assert report.added == [url] and not report.skipped
    assert site.paths() == ["/robots.txt", "/docs/a.html"]  # no links followed without --crawl
    assert all(r["user_agent"] == USER_AGENT for r in site.log)
    answer = pipeline.ask("When was the Tern Point lighthouse lamp converted to electricity?")
    assert not answer.abstained and "1961" in answer.text
    assert answer.citations[0].source == url
    text = stored_text(pipeline, url)
    assert "script text" not in text and "Home" in text  # visible text only
    cited = answer.citations[0]
    assert pipeline.corpus().text(url, cited.start, cited.end) == cited.excerpt


def test_crawl_stays_on_the_site_obeys_robots_and_names_failures(site, pipeline):
    report = pipeline.ingest([], web=WebRequest((f"{site.url}/docs/",), crawl=True, max_pages=50))
    found = set(report.added)
    assert found == pages(
        site, "", "a.html", "b.html", "notes.txt", "changing.html", "etag.html", "modified.html"
    ) | pages(site, "extra.html")
    skipped = report.skipped
    assert skipped[f"{site.url}/docs/missing.html"] == "HTTP 404 Not Found"
    assert skipped[f"{site.url}/docs/broken.html"].startswith("HTTP 500")
    assert skipped[f"{site.url}/docs/slow.html"] == "no answer within 0.5 s"
    assert skipped[f"{site.url}/docs/report"].startswith("neither HTML nor text")
    requested = site.paths()
    assert requested.count("/robots.txt") == 1
    assert "/docs/private/secret.html" not in requested  # robots.txt disallows it
    assert "/other.html" not in requested  # outside /docs/
    assert "/docs/image.png" not in requested  # not a page
    assert requested.count("/docs/a.html") == 1  # old.html redirects to it: fetched once
    assert "/docs/old.html" in requested and f"{site.url}/docs/old.html" not in found
    assert not report.removed


def test_recrawl_sends_validators_counts_304s_unchanged_and_updates_what_changed(site, pipeline):
    request = WebRequest((f"{site.url}/docs/",), crawl=True, max_pages=50)
    pipeline.ingest([], web=request)
    site.log.clear()
    site.version = 2
    report = pipeline.ingest([], web=request)
    etag = [r for r in site.log if r["path"] == "/docs/etag.html"]
    assert etag[0]["if_none_match"] == '"stable-1"' and etag[0]["status"] == 304
    modified = [r for r in site.log if r["path"] == "/docs/modified.html"]
    assert modified[0]["if_modified_since"] and modified[0]["status"] == 304
    assert site.statuses("/docs/changing.html") == [200]
    assert report.updated == [f"{site.url}/docs/changing.html"]
    assert pages(site, "etag.html", "modified.html", "a.html") <= set(report.unchanged)
    assert not report.added and not report.removed
    assert "version 2" in stored_text(pipeline, f"{site.url}/docs/changing.html")
    # a 304 never loses a page: a new collection gets it from the kept text
    fresh = Pipeline(pipeline.settings, collection="other")
    again = fresh.ingest([], web=WebRequest((f"{site.url}/docs/etag.html",)))
    assert (
        again.added == [f"{site.url}/docs/etag.html"]
        and site.statuses("/docs/etag.html")[-1] == 304
    )


def test_pages_gone_are_removed_only_by_a_crawl_that_ran_to_the_end(site, pipeline):
    request = WebRequest((f"{site.url}/docs/",), crawl=True, max_pages=50)
    first = pipeline.ingest([], web=request)  # has a 500 and a timeout: incomplete
    extra = f"{site.url}/docs/extra.html"
    assert extra in first.added
    site.extra = False
    incomplete = pipeline.ingest([], web=request)
    assert not incomplete.removed and extra in pipeline.sources()
    site.broken, site.slow = False, False
    truncated = pipeline.ingest([], web=WebRequest(request.urls, crawl=True, max_pages=3))
    assert not truncated.removed
    complete = pipeline.ingest([], web=request)
    assert complete.removed == [extra] and extra not in pipeline.sources()
    assert not complete.skipped.get(f"{site.url}/docs/broken.html")
    # a single page that fails is named and kept, never removed
    site.broken = True
    single = pipeline.ingest([], web=WebRequest((f"{site.url}/docs/broken.html",)))
    assert single.skipped and not single.removed
    assert f"{site.url}/docs/broken.html" in pipeline.sources()


def test_a_sitemap_index_lists_the_pages_and_nothing_else_is_fetched(site, pipeline):
    report = pipeline.ingest([], web=WebRequest((f"{site.url}/sitemap_index.xml",)))
    assert set(report.added) == pages(site, "a.html", "b.html", "notes.txt")
    requested = site.paths()
    assert "/docs/sitemap.xml" in requested and "/other.html" not in requested
    assert "/docs/" not in requested  # links are followed only with --crawl


def test_the_page_budget_caps_requests(site, pipeline):
    report = pipeline.ingest([], web=WebRequest((f"{site.url}/docs/",), crawl=True, max_pages=3))
    fetched = [p for p in site.paths() if p != "/robots.txt"]
    assert len(fetched) == 3 and len(report.added) + len(report.skipped) <= 3


def test_a_site_whose_robots_txt_fails_is_not_fetched(site, pipeline):
    site.robots_status = 503
    report = pipeline.ingest([], web=WebRequest((f"{site.url}/docs/a.html",)))
    assert "robots.txt cannot be read" in report.skipped[f"{site.url}/docs/a.html"]
    assert site.paths() == ["/robots.txt"]


def test_urls_are_told_from_paths():
    files, web = split_sources(["docs", "HTTP://Example.COM:80/a#x"], True, None, 200)
    assert files == [Path("docs")] and web == WebRequest(("http://example.com/a",), True, 200)
    assert normalise_url("https://h.org") == "https://h.org/"
    with pytest.raises(InputError, match="need a web address"):
        split_sources(["docs"], True, None, 200)
    with pytest.raises(InputError, match="Not a web address"):
        split_sources(["https://"], False, None, 200)


def test_cli_ingests_a_crawl_and_refuses_bad_arguments_in_one_line(site, tmp_path, monkeypatch):
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QABOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("QABOT_WEB_TIMEOUT", "0.5")
    site.slow = False
    result = runner.invoke(app, ["ingest", f"{site.url}/docs/", "--crawl", "--max-pages", "4"])
    assert result.exit_code == 0, result.output
    assert "added" in result.stdout
    assert len([p for p in site.paths() if p != "/robots.txt"]) == 4
    for args in (["ingest", "notes", "--crawl"], ["ingest", "https://"]):
        bad = runner.invoke(app, args)
        assert bad.exit_code == 1 and "Traceback" not in bad.output
        assert bad.stderr.strip().count("\n") == 0
