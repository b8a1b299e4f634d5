"""The documentation site (mkdocs.yml, docs/hooks.py): it builds with warnings as errors, every
relative link and asset of every page resolves to a file of the built site (anchors too), and
no page loads anything from the network, so the site works opened from disk."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.I)  # http://, https://, //host
CSS_REMOTE = re.compile(r"""(?:@import\s+(?:url\()?|url\()\s*['"]?\s*(?:[a-z]+:)?//""", re.I)
JS_REMOTE = re.compile(r"""(?:\bimport\s*\(?|\bfrom|importScripts\s*\()\s*['"`](?:[a-z]+:)?//""",
                       re.I)
LOADS = {("script", "src"), ("link", "href"), ("img", "src"), ("iframe", "src"),
         ("source", "src"), ("video", "src"), ("audio", "src"), ("embed", "src"),
         ("object", "data"), ("input", "src"), ("track", "src"), ("video", "poster")}


class Page(HTMLParser):
    """Every URL a page links to or loads, its ids, and its inline scripts and styles."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, url)
        self.ids: set[str] = set()
        self.inline: list[str] = []  # <script> and <style> bodies, style="" attributes
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name") and tag != "meta":
                self.ids.add(value)
            elif name in ("href", "src", "data", "poster"):
                self.links.append((tag, name, value.strip()))
            elif name == "srcset":
                self.links += [(tag, "src", part.split()[0]) for part in value.split(",")
                               if part.strip()]
            elif name == "style":
                self.inline.append(value)
        if tag in ("script", "style"):
            self._in = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self.inline.append(data)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(ROOT / "mkdocs.yml"), "--site-dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (
        f"mkdocs build --strict failed (pip install -e '.[dev]' installs the docs tools):\n"
        f"{result.stdout[-3000:]}{result.stderr[-6000:]}")
    print(f"site built in {time.perf_counter() - start:.1f} s")
    return out


@pytest.fixture(scope="module")
def pages(site: Path) -> dict[Path, Page]:
    parsed = {}
    for path in sorted(site.rglob("*.html")):
        page = Page()
        page.feed(path.read_text(encoding="utf-8"))
        parsed[path] = page
    assert len(parsed) > 10
    return parsed


def test_every_relative_link_and_asset_resolves_to_a_file_of_the_site(
        site: Path, pages: dict[Path, Page]) -> None:
    missing, anchors = [], []
    for path, page in pages.items():
        if path == site / "404.html":
            continue  # only a web server shows it, for any missing URL: its links are absolute
        for tag, _, url in page.links:
            parts = urlsplit(url)
            if parts.scheme or REMOTE.match(url) or not (parts.path or parts.fragment):
                continue  # a web address, mailto:, data:, javascript:, or a bare "#"
            if url.startswith("/"):
                missing.append(f"{path.relative_to(site)}: absolute path {url}")
                continue
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if not target.is_relative_to(site.resolve()) or not target.is_file():
                missing.append(f"{path.relative_to(site)}: <{tag}> {url}")
            elif parts.fragment and target.suffix == ".html" and tag == "a":
                ids = pages[target].ids if target in pages else set()
                if unquote(parts.fragment) not in ids:
                    anchors.append(f"{path.relative_to(site)}: {url}")
    assert missing == [], "links to files the site does not have:\n" + "\n".join(missing)
    assert anchors == [], "links to anchors their page does not have:\n" + "\n".join(anchors)


def test_no_page_loads_anything_from_the_network(site: Path, pages: dict[Path, Page]) -> None:
    remote = []
    for path, page in pages.items():
        name = path.relative_to(site)
        for tag, attribute, url in page.links:
            if (tag, attribute) in LOADS and (REMOTE.match(url) or url.startswith("http")):
                remote.append(f"{name}: <{tag} {attribute}={url}>")
        for text in page.inline:
            remote += [f"{name}: inline {m.group(0)}" for m in CSS_REMOTE.finditer(text)]
            remote += [f"{name}: inline {m.group(0)}" for m in JS_REMOTE.finditer(text)]
    for css in site.rglob("*.css"):
        text = css.read_text(encoding="utf-8", errors="replace")
        remote += [f"{css.relative_to(site)}: {m.group(0)}" for m in CSS_REMOTE.finditer(text)]
    assert remote == [], "the site would load these from the network:\n" + "\n".join(remote)


def test_search_and_math_are_served_by_the_site(site: Path, pages: dict[Path, Page]) -> None:
    assert (site / "search" / "search_index.js").is_file()  # the offline plugin's index
    home = pages[site / "index.html"]
    scripts = [url for tag, _, url in home.links if tag == "script"]
    assert "assets/javascripts/iframe-worker.js" in scripts  # search's worker from file://
    tutorial = (site / "tutorial.html").read_text(encoding="utf-8")
    assert "$$" in tutorial and 'src="assets/mathjax/MathJax.js?config=' in tutorial
    assert "Load mathjax" not in tutorial  # nbconvert's CDN MathJax is gone
    mathjax = site / "assets" / "mathjax"
    assert (mathjax / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()
    assert list((mathjax / "fonts" / "HTML-CSS" / "STIX-Web" / "woff").glob("*.woff"))
    for chapter in (site / "course").glob("*.html"):
        text = chapter.read_text(encoding="utf-8")
        if "jupyter-wrapper" in text:
            assert 'src="../assets/mathjax/MathJax.js?config=' in text, chapter.name


def test_the_pages_are_the_readme_the_course_the_guides_and_the_api(
        site: Path, pages: dict[Path, Page]) -> None:
    home = (site / "index.html").read_text(encoding="utf-8")
    assert "TibetanMNIST" in home and 'href="tutorial.html"' in home  # README, docs/ links fixed
    nav = {url for _, _, url in pages[site / "index.html"].links}
    for guide in sorted((ROOT / "docs").glob("*.md")):
        if not guide.read_text(encoding="utf-8").startswith("---\njupyter:"):
            assert (site / guide.with_suffix(".html").name).is_file(), guide.name
    chapters = sorted(p.name for p in (ROOT / "docs" / "course").glob("[0-9][0-9]-*.ipynb"))
    overview = (site / "course" / "index.html").read_text(encoding="utf-8")
    for name in chapters:
        html = Path(name).with_suffix(".html").as_posix()
        assert (site / "course" / html).is_file() and f"course/{html}" in nav, name
        assert f'href="{html}"' in overview, f"the course overview does not list {name}"
    for module in ("numeral", "nn", "nn-layers", "nn-training", "data", "predict", "read",
                   "serve"):
        assert f"api/{module}.html" in nav, module
    api = (site / "api" / "numeral.html").read_text(encoding="utf-8")
    assert "load_model" in api and "Classifier" in api
    layers = (site / "api" / "nn-layers.html").read_text(encoding="utf-8")
    for name in ("Dense", "Conv2D", "BatchNorm", "MaxPool2D"):
        assert name in layers, name


def test_notebooks_are_rendered_with_their_committed_outputs(site: Path) -> None:
    tutorial = (site / "tutorial.html").read_text(encoding="utf-8")
    assert "identical up to rounding: True" in tutorial  # printed by a cell, not executed here
    assert (site / "tutorial.md").is_file()  # the jupytext source: a file, not a second page


def test_search_and_math_work_opened_from_disk(site: Path) -> None:
    from playwright.sync_api import sync_playwright

    from tests.conftest import chromium_path

    executable = chromium_path()
    requested: list[str] = []
    typeset = """() => new Promise(done => {  // MathJax's queue, once it has typeset the page
        const wait = () => window.MathJax && MathJax.isReady
            ? MathJax.Hub.Queue(() => done(true)) : setTimeout(wait, 50);
        wait();
    })"""
    rendered = """[...document.querySelectorAll('.jupyter-wrapper script[type^="math/tex"]')]
        .filter(s => !(s.previousElementSibling &&
                       /^MathJax(_Display)?$/.test(s.previousElementSibling.className))).length
        + document.querySelectorAll('.MathJax .merror, .MathJax .noError').length"""
    notebooks = [site / "tutorial.html", *sorted((site / "course").glob("[0-9][0-9]-*.html"))]
    failed, typeset_count = {}, {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        page = browser.new_page()
        page.on("request", lambda request: requested.append(request.url))
        page.goto((site / "index.html").as_uri())
        page.click("input.md-search__input")
        page.keyboard.type("backward")
        page.wait_for_selector(".md-search-result__item", timeout=20_000)  # the worker ran
        for notebook in notebooks:
            page.goto(notebook.as_uri())
            page.evaluate(typeset)
            if errors := page.evaluate(rendered):
                failed[notebook.name] = errors
            typeset_count[notebook.name] = page.evaluate(
                "document.querySelectorAll('.jupyter-wrapper span.MathJax').length")
        browser.close()
    assert failed == {}, f"TeX that MathJax could not typeset, by page: {failed}"
    assert typeset_count["tutorial.html"] >= 2, typeset_count  # its two displays
    remote = [url for url in requested if not url.startswith(("file:", "data:", "about:"))]
    assert remote == [], f"requests off the disk: {remote}"
