"""A small web site on 127.0.0.1 for the web-ingest tests (aiohttp in a thread).

Under ``/docs/``: an index linking to pages, a redirect, a 404, a 500, a page that hangs, a
binary, a page robots.txt forbids, a page outside ``/docs/``, a page whose ETag changes between
runs (:attr:`FakeSite.version`), pages that answer 304 to ``If-None-Match`` /
``If-Modified-Since``, and sitemaps (``/docs/sitemap.xml``, ``/sitemap_index.xml``).
Every request is logged with its path, status and conditional headers.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web

MODIFIED = "Wed, 01 Jan 2025 00:00:00 GMT"
PAGES = {
    "a.html": (
        "<html><head><title>A</title><script>var hidden = 'script text';</script></head><body>"
        "<nav><a href='./'>Home</a> <a href='b.html#part'>B</a></nav>"
        "<p>The Tern Point lighthouse lamp was converted to electricity in 1961.</p>"
        "</body></html>"
    ),
    "b.html": "<html><body><p>Brown pelicans dive from twenty metres.</p></body></html>",
    "etag.html": "<html><body><p>The kakapo is a flightless parrot.</p></body></html>",
    "modified.html": "<html><body><p>Rimu trees fruit every few years.</p></body></html>",
    "extra.html": "<html><body><p>The extra page about gannets.</p></body></html>",
}


class FakeSite:
    def __init__(self) -> None:
        self.version = 1  # of changing.html
        self.broken = True  # broken.html answers 500 (else 200)
        self.slow = True  # slow.html hangs (else 200)
        self.extra = True  # extra.html exists and is linked
        self.robots_status = 200
        self.log: list[dict[str, Any]] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> FakeSite:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def paths(self) -> list[str]:
        return [r["path"] for r in self.log]

    def statuses(self, path: str) -> list[int]:
        return [r["status"] for r in self.log if r["path"] == path]

    # ---- the site ------------------------------------------------------------------------------
    def _index(self) -> str:
        links = [
            "a.html",
            "b.html",
            "old.html",
            "missing.html",
            "broken.html",
            "slow.html",
            "report",
            "private/secret.html",
            "../other.html",
            "notes.txt",
            "changing.html",
            "etag.html",
            "modified.html",
            "image.png",
            "#top",
            "mailto:keeper@example.invalid",
            "http://example.invalid/elsewhere.html",
        ]
        if self.extra:
            links.append("extra.html")
        anchors = "".join(f"<li><a href='{href}'>{href}</a></li>" for href in links)
        head = "<html><body><h1>Docs</h1><p>Index of the field notes.</p>"
        return f"{head}<ul>{anchors}</ul></body></html>"

    def _sitemap(self) -> str:
        urls = ["/docs/a.html", "/docs/b.html", "/docs/notes.txt", "/other.html"]
        locs = "".join(f"<url><loc>{self.url}{u}</loc></url>" for u in urls)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        response = await self._respond(path, request)
        self.log.append(
            {
                "path": path,
                "status": response.status,
                "if_none_match": request.headers.get("If-None-Match"),
                "if_modified_since": request.headers.get("If-Modified-Since"),
                "user_agent": request.headers.get("User-Agent", ""),
            }
        )
        return response

    async def _respond(self, path: str, request: web.Request) -> web.StreamResponse:
        html = "text/html"
        if path == "/robots.txt":
            if self.robots_status != 200:
                return web.Response(status=self.robots_status, text="unavailable")
            return web.Response(text="User-agent: *\nDisallow: /docs/private/\n")
        if path == "/docs/":
            return web.Response(text=self._index(), content_type=html)
        if path == "/docs":
            return web.Response(status=301, headers={"Location": "/docs/"})
        if path == "/docs/old.html":
            return web.Response(status=301, headers={"Location": "/docs/a.html"})
        if path == "/docs/broken.html" and self.broken:
            return web.Response(status=500, text="boom")
        if path == "/docs/broken.html":
            return web.Response(text="<p>Fixed now.</p>", content_type=html)
        if path == "/docs/slow.html":
            if self.slow:
                await asyncio.sleep(5)
            return web.Response(text="<p>Slow but here.</p>", content_type=html)
        if path == "/docs/report":
            return web.Response(body=b"\x00\x01binary", content_type="application/octet-stream")
        if path == "/docs/notes.txt":
            return web.Response(text="Field notes: gannets nest on cliffs.\n")
        if path == "/docs/changing.html":
            etag = f'"v{self.version}"'
            if request.headers.get("If-None-Match") == etag:
                return web.Response(status=304, headers={"ETag": etag})
            text = f"<p>The ferry timetable is at version {self.version}.</p>"
            return web.Response(text=text, content_type=html, headers={"ETag": etag})
        if path == "/docs/etag.html":
            etag = '"stable-1"'
            if request.headers.get("If-None-Match") == etag:
                return web.Response(status=304, headers={"ETag": etag})
            return web.Response(text=PAGES["etag.html"], content_type=html, headers={"ETag": etag})
        if path == "/docs/modified.html":
            if request.headers.get("If-Modified-Since") == MODIFIED:
                return web.Response(status=304)
            headers = {"Last-Modified": MODIFIED}
            return web.Response(text=PAGES["modified.html"], content_type=html, headers=headers)
        if path == "/docs/extra.html" and not self.extra:
            return web.Response(status=404, text="gone")
        if path.startswith("/docs/") and path[6:] in PAGES:
            return web.Response(text=PAGES[path[6:]], content_type=html)
        if path == "/docs/private/secret.html" or path == "/other.html":
            return web.Response(text="<p>should never be fetched</p>", content_type=html)
        if path == "/docs/sitemap.xml":
            return web.Response(text=self._sitemap(), content_type="application/xml")
        if path == "/sitemap_index.xml":
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                f"<sitemap><loc>{self.url}/docs/sitemap.xml</loc></sitemap></sitemapindex>"
            )
            return web.Response(text=body, content_type="application/xml")
        return web.Response(status=404, text="not found")
