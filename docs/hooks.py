"""MkDocs hooks for the documentation site (mkdocs.yml: ``hooks``), and one Griffe extension.

- Home is README.md itself, its ``docs/`` links made relative to docs/, so the README is the
  same file on GitHub and in the site.
- The course's nav and chapter list come from whatever docs/course/*.ipynb exist; a guide
  (docs/*.md, docs/*.ipynb) missing from mkdocs.yml's nav joins the end of Guides; a
  notebook's jupytext .md source is copied as a plain file, not rendered a second time.
- The API reference is one generated page per module (``API``); numeral.course joins it when
  the package exists.
- Nothing is loaded from the network: notebook pages get MathJax 2.7.9 from the
  jupyter-server-mathjax package instead of nbconvert's CDN copy (and lose nbconvert's CDN
  Mermaid loader); Material's offline search gets its iframe-worker shim from the site.
- ``PlainDocstrings`` keeps numeral's plain-text docstrings readable as Markdown.
"""

from __future__ import annotations

import json
import posixpath
import re
import textwrap
from html import unescape
from pathlib import Path
from typing import Any

from griffe import Extension, GriffeLoader, Module, Object, visit

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CHAPTERS_MARK = "<!-- chapters: filled in by docs/hooks.py -->"

# The API reference: (nav title, page, the modules on it). A package's page shows what it
# exports (its __all__), so numeral.nn.layers is every layer, numeral.nn the network.
API: list[tuple[str, str, list[str]]] = [
    ("numeral", "numeral", ["numeral"]),
    ("numeral.nn", "nn", ["numeral.nn"]),
    ("numeral.nn layers", "nn-layers", ["numeral.nn.layers"]),
    ("numeral.nn losses, optim, init", "nn-training", [
        "numeral.nn.losses", "numeral.nn.optim", "numeral.nn.init", "numeral.nn.regularizers",
        "numeral.nn.schedules"]),
    ("numeral.data", "data", ["numeral.data"]),
    ("numeral.predict", "predict", ["numeral.predict"]),
    ("numeral.read", "read", ["numeral.read"]),
    ("numeral.course", "course", ["numeral.course"]),
    ("numeral.serve", "serve", ["numeral.serve"]),
]

# MathJax 2.7.9 as jupyter-server-mathjax ships it (byte for byte npm's mathjax@2.7.9): TeX in,
# HTML-CSS out with its STIX web fonts, all read from the site.
MATHJAX_PARTS = ("MathJax.js", "LICENSE", "config/TeX-AMS-MML_HTMLorMML-full.js", "extensions/",
                 "jax/input/", "jax/element/", "jax/output/HTML-CSS/", "fonts/HTML-CSS/",
                 "localization/en/")
MATHJAX_SKIP = ("extensions/a11y/",)
MATHJAX_CONFIG = """<script type="text/x-mathjax-config">
MathJax.Hub.Config({
  skipStartupTypeset: true,
  TeX: {equationNumbers: {autoNumber: "AMS", useLabelIds: true}},
  tex2jax: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]],
            displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]],
            processEscapes: true, processEnvironments: true},
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null,
               linebreaks: {automatic: true}},
  MathMenu: {showRenderer: false, showFontMenu: false},
  messageStyle: "none", displayAlign: "center"
});
MathJax.Hub.Queue(["Typeset", MathJax.Hub, document.querySelector(".jupyter-wrapper")]);
</script>
<style>.jupyter-wrapper .MathJax_Display { overflow-x: auto; overflow-y: hidden; }</style>
<script src="%s?config=TeX-AMS-MML_HTMLorMML-full"></script>"""

# iframe-worker 1.0.4 shim/index.js (MIT, (c) 2020-2022 Martin Donath), which Material's offline
# plugin otherwise loads from unpkg: on file:// it runs the search worker in an iframe.
IFRAME_WORKER = (
    r"""/* iframe-worker 1.0.4, MIT License, Copyright (c) 2020-2022 Martin Donath */
"""
    r""""use strict";(()=>{function c(s,n){parent.postMessage(s,n||"*")}function d(...s){return """
    r"""s.reduce((n,e)=>n.then(()=>new Promise(r=>{let t=document.createElement("script");t.src="""
    r"""e,t.onload=r,document.body.appendChild(t)})),Promise.resolve())}var o=class extends Even"""
    r"""tTarget{constructor(e){super();this.url=e;this.m=e=>{e.source===this.w&&(this.dispatchEv"""
    r"""ent(new MessageEvent("message",{data:e.data})),this.onmessage&&this.onmessage(e))};this."""
    r"""e=(e,r,t,i,m)=>{if(r===`${this.url}`){let a=new ErrorEvent("error",{message:e,filename:r"""
    r""",lineno:t,colno:i,error:m});this.dispatchEvent(a),this.onerror&&this.onerror(a)}};let r="""
    r"""document.createElement("iframe");r.hidden=!0,document.body.appendChild(this.iframe=r),th"""
    r"""is.w.document.open(),this.w.document.write(`<html><body><script>postMessage=${c};importS"""
    r"""cripts=${d};addEventListener("error",({error})=>{parent.dispatchEvent(new ErrorEvent("er"""
    r"""ror",{filename:"${e}",error}))})<\/script><script src=${e}?${+Date.now()}><\/script></bo"""
    r"""dy></html>`),this.w.document.close(),onmessage=this.m,onerror=this.e,this.r=new Promise("""
    r"""(t,i)=>{this.w.onload=t,this.w.onerror=i})}terminate(){this.iframe.remove(),onmessage=on"""
    r"""error=null}postMessage(e){this.r.catch().then(()=>{this.w.dispatchEvent(new MessageEvent"""
    r"""("message",structuredClone({data:e})))})}get w(){return this.iframe.contentWindow}};wind"""
    r"""ow.IFrameWorker=o;location.protocol==="file:"&&(window.Worker=o);})();"""
    "\n"
)
IFRAME_WORKER_PATH = "assets/javascripts/iframe-worker.js"


def chapters() -> list[str]:
    """docs/course/*.ipynb (NN-name.ipynb), in order, as paths relative to docs/."""
    return sorted(p.relative_to(DOCS).as_posix() for p in DOCS.glob("course/*.ipynb"))


def api_pages() -> list[tuple[str, str, list[str]]]:
    return [entry for entry in API
            if entry[0] != "numeral.course" or (ROOT / "numeral" / "course").is_dir()]


def _paths(nav: Any) -> set[str]:
    if isinstance(nav, str):
        return {nav}
    items = nav.values() if isinstance(nav, dict) else nav
    return set().union(*(_paths(item) for item in items)) if items else set()


def on_config(config: Any) -> Any:
    """Fill in the nav: the course's chapters, guides it does not list, the API pages."""
    listed = _paths(config.nav or [])
    unlisted = sorted(p.name for p in (*DOCS.glob("*.md"), *DOCS.glob("*.ipynb"))
                      if p.name not in listed and p.name != "index.md" and not _is_jupytext(p))
    nav = []
    for item in config.nav or []:
        title = next(iter(item)) if isinstance(item, dict) else None
        if title == "Course":
            item = {title: [item[title], *chapters()]}
        elif title == "Guides":
            item = {title: [*item[title], *unlisted]}
        elif title == "API reference":
            item = {title: [{name: f"api/{page}.md"} for name, page, _ in api_pages()]}
        nav.append(item)
    config.nav = nav
    return config


def _is_jupytext(path: Path) -> bool:
    """A .md file with a jupytext header (the source of a notebook)."""
    if path.suffix != ".md":
        return False
    with path.open(encoding="utf-8") as f:
        return f.read(40).replace("\r\n", "\n").startswith("---\njupyter:")


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    class PlainFile(File):
        """A notebook's jupytext source: copied as it is, not rendered as a page."""

        def is_documentation_page(self) -> bool:
            return False

    for f in list(files):
        if (f.src_uri.endswith(".md") and f.abs_src_path and f.src_uri != "index.md"
                and _is_jupytext(Path(f.abs_src_path))):
            files.remove(f)
            files.append(PlainFile(f.src_uri, f.src_dir, f.dest_dir, f.use_directory_urls,
                                   inclusion=f.inclusion))

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    files.append(File.generated(config, "index.md", content=re.sub(r"\]\(docs/", "](", readme)))
    for _, page, objects in api_pages():
        text = "\n\n".join(f"::: {name}" for name in objects)
        files.append(File.generated(config, f"api/{page}.md", content=text + "\n"))
    files.append(File.generated(config, IFRAME_WORKER_PATH, content=IFRAME_WORKER))
    static = _mathjax_dir()
    if static is not None:
        for path in sorted(static.rglob("*")):
            rel = path.relative_to(static).as_posix()
            if (path.is_file() and rel.startswith(MATHJAX_PARTS)
                    and not rel.startswith(MATHJAX_SKIP)):
                files.append(File.generated(config, f"assets/mathjax/{rel}",
                                            abs_src_path=str(path)))
    return files


def _mathjax_dir() -> Path | None:
    try:
        import jupyter_server_mathjax
    except ImportError:
        return None
    return Path(jupyter_server_mathjax.__file__).parent / "static"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri == "course/index.md" and CHAPTERS_MARK in markdown:
        markdown = markdown.replace(CHAPTERS_MARK, _chapter_list())
    return markdown


def _chapter_list() -> str:
    """One line per chapter: its title, linked, and its opening paragraph (what it teaches)."""
    lines = []
    for rel in chapters():
        book = json.loads((DOCS / rel).read_text(encoding="utf-8"))
        text = next(("".join(c["source"]) for c in book["cells"] if c["cell_type"] == "markdown"),
                    "")
        title, summary = posixpath.basename(rel), ""
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
        for i, p in enumerate(paragraphs):
            if p.startswith("# "):
                title = p.splitlines()[0][2:].strip()
                rest = paragraphs[i + 1:]
                summary = rest[0] if rest else ""
                break
        summary = summary.split("**It runs**")[0].strip()
        summary = re.sub(r"\$([^$\n]+)\$", r"`\1`", " ".join(summary.split()))  # no math here
        lines.append(f"- [{title}]({posixpath.basename(rel)}){': ' + summary if summary else ''}")
    return "\n".join(lines) if lines else "*(no chapter is built yet)*"


_MATHJAX_BLOCK = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->",
                            re.S)
_MERMAID = re.compile(r'<script type="module">(?:(?!</script>).)*?mermaid.*?</script>', re.S)


_HREF = re.compile(r'(<a\s[^>]*?href=")([^"#?:/][^"#?:]*)([#?][^"]*)?"')


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Notebook pages: links to other pages made theirs (MkDocs does this for Markdown
    pages only), MathJax from the site (or TeX left as text without it), no Mermaid CDN."""
    if not page.file.src_uri.endswith(".ipynb"):
        return html

    def link(m: re.Match[str]) -> str:
        path = posixpath.normpath(posixpath.join(posixpath.dirname(page.file.src_uri),
                                                 unescape(m.group(2))))
        if path.endswith(".md") and files.get_file_from_path(path[:-3] + ".ipynb"):
            path = path[:-3] + ".ipynb"  # a jupytext source: its notebook's page
        target = files.get_file_from_path(path)
        if target is None or not target.is_documentation_page():
            return m.group(0)
        return f'{m.group(1)}{target.url_relative_to(page.file)}{m.group(3) or ""}"'

    html = _MERMAID.sub("", _HREF.sub(link, html))
    local = ""
    if _mathjax_dir() is not None:
        here = posixpath.dirname(page.file.url) or "."
        src = posixpath.relpath("assets/mathjax/MathJax.js", here)
        local = MATHJAX_CONFIG % src
    return _MATHJAX_BLOCK.sub(lambda _: local, html)


# --------------------------------------------------------------------------- Griffe extension

_ROLE = re.compile(r":(?:py:)?(?:mod|class|func|meth|attr|data|obj|exc|const):`~?([^`]+)`")


def plain_docstring(text: str) -> str:
    """numeral's docstrings are plain text: prose, ``code`` and aligned columns (equations,
    tables of options). Prose stays Markdown; a paragraph whose layout carries meaning (an
    indented or aligned line, a reST underline) becomes a preformatted block; Sphinx roles
    (``:mod:`x```) become code."""
    out = []
    for block in re.split(r"\n\s*\n", text.strip("\n")):
        lines = block.splitlines()
        laid_out = any(
            (i and line[:1].isspace()) or re.search(r"\S {3,}\S", line)
            or re.fullmatch(r"\s*[-=~^]{3,}\s*", line)
            for i, line in enumerate(lines))
        if all(line.startswith("    ") for line in lines):
            laid_out = True  # an indented (reST literal) block
        if laid_out:
            body = textwrap.dedent("\n".join(lines))
            out.append("```text\n" + _ROLE.sub(r"\1", body).replace("``", "") + "\n```")
        else:
            out.append(re.sub(r"::$", ":", _ROLE.sub(r"`\1`", block), flags=re.M))
    return "\n\n".join(out)


class PlainDocstrings(Extension):
    """mkdocs.yml loads this into mkdocstrings' python handler (its ``extensions`` option)."""

    def on_instance(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain_docstring(obj.docstring.value)

    def on_package(self, *, pkg: Module, loader: GriffeLoader, **kwargs: Any) -> None:
        """numeral/train has no __init__.py, and Griffe skips a folder without one inside a
        package: read numeral/train/classifier.py into the tree by hand."""
        folder = ROOT / "numeral" / "train"
        if pkg.name != "numeral" or "train" in pkg.members or not folder.is_dir():
            return
        train = Module("train", filepath=[folder], parent=pkg,
                       lines_collection=loader.lines_collection,
                       modules_collection=loader.modules_collection)
        pkg.set_member("train", train)
        path = folder / "classifier.py"
        train.set_member("classifier", visit(
            "classifier", filepath=path, code=path.read_text(encoding="utf-8"), parent=train,
            extensions=loader.extensions, docstring_parser=loader.docstring_parser,
            docstring_options=loader.docstring_options, lines_collection=loader.lines_collection,
            modules_collection=loader.modules_collection))
