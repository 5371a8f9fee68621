"""Web pages as documents: one page, a sitemap (or sitemap index), or a crawl of one site.

What it fetches, it hands to the indexer as :class:`~retrieval.loaders.LoadResult` objects whose
source is the page's URL (after redirects), so citations name the URL. The rules:

* **Same site only.** A crawl (``--crawl``) follows ``<a href>`` links whose scheme and host
  are the start page's and whose path is under the start page's directory; a sitemap's pages
  must be under the sitemap's directory (as the sitemap protocol itself requires). Redirects
  are followed one hop at a time under the same rules, so nothing off the site is requested.
* **A page budget** (``--max-pages``): pages requested, failed ones included.
* **robots.txt** is read once per site (``urllib.robotparser``) and obeyed for every request,
  with its ``Crawl-delay`` (capped at 10 s). As RFC 9309 says: a robots.txt that is missing
  (4xx) allows everything; one that cannot be read (5xx, no answer) forbids everything.
  ``<meta name="robots">`` ``noindex`` / ``nofollow`` are honoured too.
* **Visible text only**, through the HTML loader; plain text and Markdown are taken as they are.
* **Conditional re-fetch**: the ``ETag`` / ``Last-Modified`` of each page and its text are kept
  in :mod:`retrieval.web_cache`; a ``304 Not Modified`` gives back that text, which the indexer
  then finds stored and counts as unchanged.
* **Failures are named and skipped** (404, 500, timeouts, neither HTML nor text).
* **Removal is conservative**: a page ingested by a crawl is removed only when the same crawl
  (same start URL, same collection) later runs to the end (frontier exhausted within the budget,
  no failure that may pass: 5xx, 429, no answer, robots.txt unreadable) and no longer finds
  it, and no other crawl of the collection
  found it. A single page is never removed because it failed; an interrupted or truncated
  crawl removes nothing.
"""

from __future__ import annotations

import gzip
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser
from xml.etree import ElementTree

import httpx

from qabot.errors import InputError
from qabot.types import Document
from retrieval.loaders import (
    MAX_FILE_BYTES,
    LoadError,
    LoadResult,
    _html_text,
    decode_text,
    normalise_text,
)
from retrieval.web_addresses import PublicOnlyTransport, private_address, refusal
from retrieval.web_cache import CachedPage, WebCache

try:
    _VERSION = version("qabot")
except PackageNotFoundError:  # pragma: no cover - running from a checkout without install
    _VERSION = "0"
#: The product token robots.txt rules are matched against is "qabot".
USER_AGENT = f"qabot/{_VERSION} (document ingest; obeys robots.txt)"
MAX_REDIRECTS = 5
MAX_CRAWL_DELAY = 10.0
#: Nested sitemaps read from one sitemap index (each may list 50,000 pages).
MAX_SITEMAPS = 50
HTML_TYPES = {"text/html", "application/xhtml+xml"}
TEXT_TYPES = {"text/plain", "text/markdown", "text/x-markdown"}
XML_TYPES = {"application/xml", "text/xml", "application/x-gzip", "application/gzip"}
#: Links to these are not pages: not requested, not counted against the budget.
NOT_PAGES = (
    ".png .jpg .jpeg .gif .webp .svg .ico .css .js .mjs .json .zip .gz .tgz .tar .mp3 .mp4"
    " .webm .avi .mov .woff .woff2 .ttf .eot .exe .dmg .iso .bin .woff"
).split()

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class WebRequest:
    """What to fetch: ``urls`` are pages or sitemaps; ``crawl`` follows links from pages."""

    urls: tuple[str, ...]
    crawl: bool = False
    max_pages: int = 200
    #: Refuse hosts that are not globally routable (a Discord admin's request:
    #: retrieval/web_addresses.py).
    public_only: bool = False


@dataclass(slots=True)
class WebFetch:
    """The pages of one run, what the indexer may remove, and the crawl records to keep."""

    results: list[LoadResult] = field(default_factory=list)
    remove: set[str] = field(default_factory=set)
    not_modified: list[str] = field(default_factory=list)
    records: dict[str, set[str]] = field(default_factory=dict)  # crawl root -> pages found

    def commit(self, cache: WebCache, collection: str) -> None:
        """Record what each crawl found: called once the ingest has stored the pages."""
        for root, sources in self.records.items():
            cache.set_crawl_record(collection, root, sources)


def is_url(text: str) -> bool:
    return text[:8].lower().startswith(("http://", "https://"))


def normalise_url(url: str) -> str:
    """Without the fragment, with a lower-case scheme and host and a path ("/" at least)."""
    url, _ = urldefrag(url.strip())
    parts = urlsplit(url)
    netloc = parts.netloc.lower()
    for scheme, port in (("http", ":80"), ("https", ":443")):
        if parts.scheme.lower() == scheme and netloc.endswith(port):
            netloc = netloc[: -len(port)]
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))


def split_sources(
    args: list[str], crawl: bool, max_pages: int | None, default_pages: int
) -> tuple[list[Path], WebRequest | None]:
    """``qabot ingest``'s arguments as (files and directories, the web pages to fetch)."""
    urls = tuple(check_url(a) for a in args if is_url(a))
    files = [Path(a) for a in args if not is_url(a)]
    if (crawl or max_pages is not None) and not urls:
        raise InputError("--crawl and --max-pages need a web address (http:// or https://).")
    if not urls:
        return files, None
    return files, WebRequest(urls, crawl, max_pages or default_pages)


def check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InputError(f"Not a web address: {url!r} (use http://host/path or https://...).")
    return normalise_url(url)


@dataclass(frozen=True, slots=True)
class Scope:
    """Same scheme and host, and a path under ``prefix``."""

    origin: str
    prefix: str

    @classmethod
    def under(cls, url: str) -> Scope:
        parts = urlsplit(url)
        directory = parts.path[: parts.path.rfind("/") + 1] or "/"
        return cls(f"{parts.scheme}://{parts.netloc}", directory)

    def __contains__(self, url: str) -> bool:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}" == self.origin and (parts.path or "/").startswith(
            self.prefix
        )


@dataclass(slots=True)
class _Page:
    """One fetch's outcome: ``text`` (a page), ``sitemap`` (page and sitemap URLs), or ``error``."""

    url: str
    final: str
    text: str | None = None
    links: list[str] = field(default_factory=list)
    sitemap: tuple[list[str], list[str]] | None = None
    error: str | None = None
    #: A failure that may pass (5xx, 429, no answer, robots.txt unreadable): the crawl that
    #: met it did not see the whole site, so it removes nothing.
    transient: bool = False
    not_modified: bool = False
    index: bool = True


class Fetcher:
    """One HTTP client, robots.txt per site, and the conditional-request cache."""

    def __init__(self, cache: WebCache, timeout: float, public_only: bool = False) -> None:
        self.cache = cache
        self.timeout = timeout
        self.public_only = public_only
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            transport=PublicOnlyTransport() if public_only else None,
        )
        self._robots: dict[str, tuple[RobotFileParser | None, float]] = {}
        self._last_request: dict[str, float] = {}

    def close(self) -> None:
        self.client.close()

    # ---- robots.txt --------------------------------------------------------------------------
    def allowed(self, url: str) -> bool:
        parser, _ = self._site(url)
        return parser is not None and parser.can_fetch(USER_AGENT, url)

    def _site(self, url: str) -> tuple[RobotFileParser | None, float]:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._robots:
            self._robots[origin] = self._read_robots(origin)
        return self._robots[origin]

    def _read_robots(self, origin: str) -> tuple[RobotFileParser | None, float]:
        """(parser, crawl delay); parser None when robots.txt could not be read (forbids all)."""
        parser = RobotFileParser(origin + "/robots.txt")
        try:
            response = self.client.get(origin + "/robots.txt", follow_redirects=True)
        except httpx.HTTPError:
            return None, 0.0
        if response.status_code >= 500:
            return None, 0.0
        if response.status_code >= 400:
            parser.parse([])  # missing: everything allowed
            return parser, 0.0
        parser.parse(response.text[:500_000].splitlines())
        delay = parser.crawl_delay(USER_AGENT)
        return parser, min(float(delay or 0.0), MAX_CRAWL_DELAY)

    def _pace(self, url: str) -> None:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        _, delay = self._site(url)
        wait = self._last_request.get(origin, 0.0) + delay - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last_request[origin] = time.monotonic()

    # ---- one URL -----------------------------------------------------------------------------
    def fetch(
        self, url: str, scope: Scope | None, seen: Callable[[str], bool] | None = None
    ) -> _Page:
        """GET ``url``, following redirects inside ``scope`` (anywhere when None).

        A redirect to a URL ``seen`` already is not followed: its page is returned empty.
        """
        cached = self.cache.page(url)
        headers = {}
        if cached is not None:
            if cached.etag:
                headers["If-None-Match"] = cached.etag
            if cached.last_modified:
                headers["If-Modified-Since"] = cached.last_modified
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            if scope is not None and current not in scope:
                return _Page(url, current, error=f"redirects off the site to {current}")
            if self.public_only:
                parts = urlsplit(current)
                address = private_address(parts.hostname or "", parts.port)
                if address is not None:
                    return _Page(url, current, error=refusal(parts.hostname or "", address))
            if not self.allowed(current):
                unreadable = self._site(current)[0] is None
                return _Page(url, current, error=self._refusal(current), transient=unreadable)
            self._pace(current)
            try:
                page = self._get(url, current, headers, cached)
            except httpx.TimeoutException:
                error = f"no answer within {self.timeout:g} s"
                return _Page(url, current, error=error, transient=True)
            except httpx.HTTPError as exc:
                reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
                error = f"cannot fetch ({reason or type(exc).__name__})"
                return _Page(url, current, error=error, transient=True)
            if isinstance(page, str):  # a redirect
                current = normalise_url(urljoin(current, page))
                if seen is not None and seen(current):
                    return _Page(url, current)
                continue
            return page
        return _Page(url, current, error=f"more than {MAX_REDIRECTS} redirects")

    def _refusal(self, url: str) -> str:
        parser, _ = self._site(url)
        if parser is None:
            return "the site's robots.txt cannot be read, so nothing is fetched from it"
        return "robots.txt does not allow qabot to fetch it"

    def _get(
        self, url: str, current: str, headers: dict[str, str], cached: CachedPage | None
    ) -> _Page | str:
        start = time.monotonic()
        request = self.client.build_request("GET", current, headers=headers)
        response = self.client.send(request, stream=True)
        try:
            if response.is_redirect and "location" in response.headers:
                return response.headers["location"]
            if response.status_code == 304 and cached is not None:
                return _Page(
                    url,
                    cached.final_url,
                    text=cached.text,
                    links=list(cached.links),
                    not_modified=True,
                )
            if response.status_code >= 400:
                phrase = f" {response.reason_phrase}" if response.reason_phrase else ""
                passing = response.status_code >= 500 or response.status_code in (408, 429)
                error = f"HTTP {response.status_code}{phrase}"
                return _Page(url, current, error=error, transient=passing)
            if response.status_code != 200:
                return _Page(url, current, error=f"HTTP {response.status_code}, not a page")
            data = bytearray()
            for piece in response.iter_bytes():
                data += piece
                if len(data) > MAX_FILE_BYTES:
                    return _Page(url, current, error="larger than 50 MB")
                if time.monotonic() - start > self.timeout:
                    error = f"no answer within {self.timeout:g} s"
                    return _Page(url, current, error=error, transient=True)
        finally:
            response.close()
        return self._read(url, current, response, bytes(data))

    def _read(self, url: str, final: str, response: httpx.Response, data: bytes) -> _Page:
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        path = urlsplit(final).path.lower()
        if kind in XML_TYPES or path.endswith((".xml", ".xml.gz")) or data[:2] == b"\x1f\x8b":
            sitemap = _sitemap(data)
            if sitemap is not None:
                return _Page(url, final, sitemap=sitemap)
        if kind not in HTML_TYPES | TEXT_TYPES:
            return _Page(url, final, error=f"neither HTML nor text ({kind or 'no content type'})")
        try:
            text = _decode(data, response.charset_encoding)
        except LoadError as exc:
            return _Page(url, final, error=str(exc))
        page = _Page(url, final)
        if kind in HTML_TYPES:
            page.index, follow, page.links = _links_and_rules(text, final)
            if not follow:
                page.links = []
            text = _html_text(text)
        page.text = normalise_text(text)
        if not page.text.strip():
            page.text, page.error = None, "no text found"
            return page
        if page.index:
            etag, modified = response.headers.get("etag"), response.headers.get("last-modified")
            if etag or modified:  # without a validator nothing conditional can be asked
                saved = CachedPage(final, etag, modified, page.text, tuple(page.links))
                self.cache.save_page(url, saved)
        return page


def _decode(data: bytes, charset: str | None) -> str:
    if charset:
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong or unknown charset label: detect instead
    return decode_text(data)


def _links_and_rules(html: str, base: str) -> tuple[bool, bool, list[str]]:
    """(may index, may follow, absolute links) of an HTML page."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    rules = " ".join(
        str(m.get("content", "")).lower()
        for m in soup.find_all("meta")
        if str(m.get("name", "")).lower() in ("robots", "qabot")
    )
    base_tag = soup.find("base", href=True)
    if base_tag is not None:
        base = urljoin(base, str(base_tag["href"]))
    links = []
    for a in soup.find_all(["a", "area"], href=True):
        if "nofollow" in " ".join(a.get("rel") or []).lower():
            continue
        href = str(a["href"]).strip()
        if href and not href.lower().startswith(("mailto:", "javascript:", "tel:", "data:")):
            links.append(normalise_url(urljoin(base, href)))
    return "noindex" not in rules and "none" not in rules, "nofollow" not in rules, links


def _sitemap(data: bytes) -> tuple[list[str], list[str]] | None:
    """(page URLs, nested sitemap URLs), or None when ``data`` is not a sitemap.

    ElementTree's expat (2.4+) refuses entity-expansion bombs, and sitemaps need no entities.
    """
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)[: MAX_FILE_BYTES + 1]
        except (OSError, EOFError):
            return None
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        return None
    tag = root.tag.rsplit("}", 1)[-1]
    if tag not in ("urlset", "sitemapindex"):
        return None
    locs = [(el.text or "").strip() for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "loc"]
    locs = [normalise_url(loc) for loc in locs if is_url(loc)]
    return (locs, []) if tag == "urlset" else ([], locs)


def _is_page_link(url: str) -> bool:
    return is_url(url) and not urlsplit(url).path.lower().endswith(tuple(NOT_PAGES))


class _Run:
    """One start URL: a page, a sitemap, or a crawl, within the page budget."""

    def __init__(
        self,
        fetcher: Fetcher,
        out: WebFetch,
        request: WebRequest,
        progress: Progress | None,
        taken: set[str],
    ) -> None:
        self.fetcher, self.out, self.request, self.progress = fetcher, out, request, progress
        self.done: set[str] = set()  # requested or reached through a redirect
        self.sources: set[str] = set()  # pages this run found
        self.taken = taken  # pages handed to the indexer by any run of this fetch

    def run(self, root: str, budget: int) -> tuple[int, bool, bool]:
        """Fetch from ``root``; (pages requested, crawl-like, ran to the end without failure)."""
        first = self.fetcher.fetch(root, None)
        self.done |= {root, first.final}
        if first.sitemap is None and not self.request.crawl:
            self._take(first)
            return 1, False, False
        scope = Scope.under(first.final)
        frontier: deque[str] = deque()
        complete = first.error is None  # a start page that fails proves nothing gone
        used = 0
        if first.sitemap is not None:
            pages, complete = self._sitemaps(first, scope)
            frontier.extend(pages)
        else:
            used = 1
            self._take(first)
            frontier.extend(first.links)
        while frontier:
            url = frontier.popleft()
            if url in self.done or url not in scope or not _is_page_link(url):
                continue
            if used >= budget:
                return used, True, False  # the budget ran out first: not the whole site
            self.done.add(url)
            used += 1
            page = self.fetcher.fetch(url, scope, self.done.__contains__)
            if self.progress:
                self.progress(url, used, used + len(frontier))
            if page.final != url and page.final in self.done:
                continue  # a redirect to a page already taken
            self.done.add(page.final)
            if page.transient:
                complete = False
            self._take(page)
            if self.request.crawl:
                frontier.extend(page.links)
        return used, True, complete

    def _sitemaps(self, first: _Page, scope: Scope) -> tuple[list[str], bool]:
        assert first.sitemap is not None
        pages, nested = list(first.sitemap[0]), deque(first.sitemap[1])
        complete, read = True, 0
        while nested:
            url = nested.popleft()
            if url in self.done or url not in Scope(scope.origin, "/"):
                continue
            if read >= MAX_SITEMAPS:
                return pages, False
            self.done.add(url)
            read += 1
            found = self.fetcher.fetch(url, Scope(scope.origin, "/"))
            if found.sitemap is None:
                self.out.results.append(LoadResult(url, None, found.error or "not a sitemap"))
                complete = complete and not found.transient
                continue
            # A sitemap speaks only for its own directory (the sitemap protocol's rule).
            pages += [p for p in found.sitemap[0] if p in Scope.under(found.final)]
            nested.extend(found.sitemap[1])
        return pages, complete

    def _take(self, page: _Page) -> None:
        if page.error:
            self.out.results.append(LoadResult(page.final, None, page.error))
        elif not page.index:
            self.out.results.append(
                LoadResult(page.final, None, "the page asks not to be indexed (robots noindex)")
            )
        else:
            assert page.text is not None
            self.sources.add(page.final)
            if page.final in self.taken:  # two start URLs reached the same page
                return
            self.taken.add(page.final)
            self.out.results.append(LoadResult(page.final, Document(page.final, page.text)))
            if page.not_modified:
                self.out.not_modified.append(page.final)


def fetch_pages(
    request: WebRequest,
    cache: WebCache,
    collection: str,
    *,
    timeout: float = 20.0,
    progress: Progress | None = None,
) -> WebFetch:
    """Fetch every start URL of ``request``; failures are reported in the results, never raised."""
    roots = [check_url(u) for u in request.urls]
    out = WebFetch()
    fetcher = Fetcher(cache, timeout, request.public_only)
    budget = request.max_pages
    taken: set[str] = set()
    try:
        for root in dict.fromkeys(roots):
            if budget <= 0:
                out.results.append(LoadResult(root, None, "the page budget (--max-pages) ran out"))
                continue
            run = _Run(fetcher, out, request, progress, taken)
            used, crawled, complete = run.run(root, budget)
            budget = max(budget - used, 0)
            if not crawled:
                continue
            before = cache.crawl_record(collection, root)
            if complete:
                gone = before - run.sources
                out.remove |= gone - cache.recorded_elsewhere(collection, root, gone)
                out.records[root] = run.sources
            else:
                out.records[root] = before | run.sources
    finally:
        fetcher.close()
    return out
