"""The rendered pages at a reader's sizes, measured in headless Chromium: at 1280 px every figure of a
chapter fits the text column at 100% (never shrunk) and its smallest text (the book style's
``plots.MIN_FONT`` points at the PNG's own resolution) is at least as large as the page's smallest body
text; every figure has a numbered caption and alt text that is not a file name; at 400 px no table's
cell wraps onto a second line (a wide table scrolls inside the page instead). Needs `make book` first;
skipped otherwise (failed with NATMU_REQUIRE_BOOK)."""

import base64
import json
import re
import struct
from pathlib import Path

import pytest

from natmu_lite.plots import MIN_FONT
from tests.test_book import CHAPTERS, HTML, render, require_book

MEASURE = """<script>
window.addEventListener("load", () => setTimeout(() => {
  const article = document.querySelector("article.bd-article") || document.querySelector("main");
  const style = getComputedStyle(article);
  const column = article.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const body = [...article.querySelectorAll("p, li, figcaption, td, th")]
    .filter(e => e.offsetParent && e.textContent.trim())
    .map(e => parseFloat(getComputedStyle(e).fontSize));
  const images = [...article.querySelectorAll("img")].filter(i => i.offsetParent).map(i => ({
    src: i.getAttribute("src"), alt: i.getAttribute("alt") || "", natural: i.naturalWidth,
    shown: i.getBoundingClientRect().width, caption: !!i.closest("figure") &&
      !!i.closest("figure").querySelector("figcaption .caption-number")}));
  const lines = el => {
    const r = document.createRange(); r.selectNodeContents(el);
    return new Set([...r.getClientRects()].filter(b => b.width > 0).map(b => Math.round(b.top))).size;
  };
  const tables = [...article.querySelectorAll("table")].filter(t => t.offsetParent).map(t => {
    let box = t.parentElement, scrolls = false;
    while (box && box !== article) {
      const o = getComputedStyle(box).overflowX; if (o === "auto" || o === "scroll") { scrolls = true; break; }
      box = box.parentElement;
    }
    return {wrapped: [...t.querySelectorAll("td, th")].filter(c => lines(c) > 1).map(c => c.textContent.trim())
              .slice(0, 5), width: t.getBoundingClientRect().width, scrolls};
  });
  const out = document.createElement("pre"); out.id = "measured";
  out.textContent = JSON.stringify({column, body: Math.min(...body), images, tables,
    page: document.documentElement.scrollWidth, window: window.innerWidth});
  document.body.appendChild(out);
}, 500));
</script>"""


def measure(chapter: str, tmp_path: Path, width: int) -> dict:
    """The page of ``chapter`` rendered at ``width`` px, measured by MEASURE (a copy of the page, with
    its own folder as base, so that the build stays untouched)."""
    page = HTML / "notebooks" / f"{chapter}.html"
    text = page.read_text()
    text = text.replace("<head>", f'<head><base href="{page.parent.as_uri()}/">', 1)
    copy = tmp_path / f"{chapter}-{width}.html"
    copy.write_text(text.replace("</body>", MEASURE + "</body>"))
    dom = render(copy, tmp_path, "--dump-dom", "--virtual-time-budget=20000", f"--window-size={width},1000")
    found = re.search(r'<pre id="measured"[^>]*>(.*?)</pre>', dom, re.S)
    assert found, f"{chapter}: the page was not measured"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                      .replace("&gt;", ">"))


def png_dpi(src: str, page: Path) -> float:
    """The resolution a PNG was drawn at (its pHYs chunk; matplotlib writes the figure's dpi there)."""
    data = base64.b64decode(src.split(",", 1)[1]) if src.startswith("data:") else (page.parent / src).read_bytes()
    at = data.find(b"pHYs")
    if at < 0:
        return 72.0
    per_metre, _, unit = struct.unpack(">IIB", data[at + 4:at + 13])
    return per_metre * 0.0254 if unit == 1 else 72.0


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_figures_fit_the_column_with_legible_text(chapter, tmp_path):
    require_book()
    m = measure(chapter, tmp_path, 1280)
    page = HTML / "notebooks" / f"{chapter}.html"
    figures = [i for i in m["images"] if "_images/" in i["src"] or i["src"].startswith("data:image")]
    assert figures, f"{chapter} shows no figure"
    for fig in figures:
        name = fig["src"][:60]
        assert fig["natural"] <= m["column"] + 1, \
            f"{chapter}: {name} is {fig['natural']} px wide, the column {m['column']:.0f} px: shrunk on the page"
        text = MIN_FONT * png_dpi(fig["src"], page) / 72 * fig["shown"] / fig["natural"]
        assert text >= m["body"] - 0.5, \
            f"{chapter}: {name}'s smallest text is {text:.1f} px on the page, the body's smallest {m['body']:.1f} px"
        assert fig["caption"], f"{chapter}: {name} has no numbered caption"
        assert fig["alt"] and not re.search(r"\.(png|jpe?g|svg)$|_images/", fig["alt"]) and len(fig["alt"]) > 30, \
            f"{chapter}: {name}'s alt text says nothing: {fig['alt']!r}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_tables_keep_one_line_cells_on_a_phone(chapter, tmp_path):
    require_book()
    m = measure(chapter, tmp_path, 400)
    for table in m["tables"]:
        assert not table["wrapped"], f"{chapter}: cells wrap onto two lines at 400 px: {table['wrapped']}"
        assert table["scrolls"] or table["width"] <= m["window"], f"{chapter}: a table is cut at the right edge"
    assert m["page"] <= m["window"] + 1, f"{chapter}: the page scrolls sideways at 400 px ({m['page']} px)"
