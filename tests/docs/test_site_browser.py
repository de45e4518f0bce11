"""The built site in a real browser: every page loads cleanly, every internal link and image
resolves, the interactive BOM lists the parts; screenshots for a human to look at."""

from __future__ import annotations

import csv
import posixpath
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from openmetering.docs import site
from openmetering.docs.pages import board, bom
from openmetering.paths import ProjectPaths

pytestmark = pytest.mark.slow

IBOM = "generated/ibom/open-meter-ibom.html"

# Set loading=eager on every image, wait for all of them, return the ones that did not load.
BROKEN_IMAGES_JS = """async () => {
  const imgs = [...document.images];
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null :
    new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); })));
  return imgs.filter(i => !i.naturalWidth).map(i => i.getAttribute('src'));
}"""


def site_pages(site: Path) -> list[str]:
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                  if "assets" not in p.relative_to(site).parts)


def target_exists(site: Path, path: str) -> bool:
    p = site / unquote(path).lstrip("/")
    return p.is_file() or (p / "index.html").is_file()


def is_favicon(msg) -> bool:
    # Chromium asks every page without an icon link (the iBoM) for /favicon.ico.
    return msg.location.get("url", "").endswith("/favicon.ico")


def check_page(ctx, base: str, site: Path, rel: str) -> list[str]:
    problems: list[str] = []
    page = ctx.new_page()
    page.on("console", lambda m: m.type == "error" and not is_favicon(m)
            and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"js error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status}: {r.url}"))
    try:
        resp = page.goto(f"{base}/{rel}", wait_until="load")
        if resp is None or resp.status != 200:
            problems.append(f"page status {resp and resp.status}")
        for src in page.evaluate(BROKEN_IMAGES_JS):
            problems.append(f"broken image: {src}")
        for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
            u = urlsplit(href)
            if f"{u.scheme}://{u.netloc}" != base:
                continue
            if not target_exists(site, posixpath.normpath(u.path)):
                problems.append(f"broken link: {href}")
    finally:
        page.close()
    return [f"{rel}: {p}" for p in problems]


def screenshot(ctx, url: str, out: Path) -> Path:
    page = ctx.new_page()
    try:
        page.goto(url, wait_until="networkidle")
        page.evaluate(BROKEN_IMAGES_JS)
        page.screenshot(path=str(out), full_page=True)
        return out
    finally:
        page.close()


def ibom_refs(ctx, url: str) -> list[str]:
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(url, wait_until="load")
        page.wait_for_selector("#bombody tr", timeout=15000)
        text = page.inner_text("#bombody")
        assert not errors, errors
        return text.replace(",", " ").split()
    finally:
        page.close()


def test_every_page_loads_clean(real_root, browser, serve_site, artifacts):
    built = real_root / "site"
    pages = site_pages(built)
    assert "index.html" in pages and "hardware/index.html" in pages
    problems = []
    with serve_site(built) as base:
        for rel in pages:
            problems += check_page(browser, base, built, rel)
        screenshot(browser, f"{base}/index.html", artifacts / "home.png")
        screenshot(browser, f"{base}/hardware/index.html", artifacts / "hardware.png")
    assert not problems, "\n".join(problems)


def test_home_page_shows_the_system_diagram(real_root, browser, serve_site):
    with serve_site(real_root / "site") as base:
        page = browser.new_page()
        page.goto(f"{base}/index.html", wait_until="networkidle")
        size = page.evaluate("""() => {
          const i = [...document.images].find(i => i.src.endsWith('diagrams/system.svg'));
          return i ? [i.naturalWidth, i.clientWidth] : null; }""")
        page.close()
    assert size and size[0] > 300 and size[1] > 300, size


def test_ibom_opens_and_lists_the_parts(real_root, browser, serve_site, artifacts):
    root = real_root
    assert (root / "site" / IBOM).is_file(), "the interactive BOM was not built"
    with serve_site(root / "site") as base:
        refs = ibom_refs(browser, f"{base}/{IBOM}")
        page = browser.new_page()
        page.goto(f"{base}/hardware/index.html", wait_until="load")
        assert page.locator(f"a[href$='{Path(IBOM).name}']").count() >= 1
        page.close()
        screenshot(browser, f"{base}/{IBOM}", artifacts / "ibom.png")
    pcb_text = board.PCB.path(ProjectPaths.at(root)).read_text()
    for ref in ("R1", "C1"):
        if f'"Reference" "{ref}"' in pcb_text:
            assert ref in refs, (ref, refs[:40])
    assert refs


def test_changing_a_part_value_changes_the_bom_page(tmp_path, make_root):
    root = make_root(tmp_path)
    bom_csv = bom.BOM.path(ProjectPaths.at(root))
    rows = list(csv.reader(bom_csv.open(newline="")))
    col = rows[0].index("Value")
    new_value = "OMD-TEST-VALUE-4k99"
    old_value, rows[1][col] = rows[1][col], new_value
    with bom_csv.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    site.build(ProjectPaths.at(root))
    html = (root / "site" / "hardware" / "bom.html").read_text()
    assert new_value in html
    assert f">{old_value}<" not in html or sum(r[col] == old_value for r in rows[1:])


SHEET_PICTURES_JS = """() => [...document.images]
  .filter(i => /generated\\/schematic\\/[^/]+\\.png$/.test(i.src))
  .map(i => ({src: i.src, natural: i.naturalWidth, shown: i.clientWidth,
              link: i.closest('a') ? i.closest('a').href : null}))"""


def test_schematic_pictures_open_readable(real_root, browser, serve_site, artifacts):
    """The hardware page shows the top sheet and two blocks as pictures; each opens at full
    size, where 1.27 mm text is ~10 px tall (200 dpi): readable at 100 % zoom."""
    with serve_site(real_root / "site") as base:
        page = browser.new_page()
        page.goto(f"{base}/hardware/index.html", wait_until="networkidle")
        page.evaluate(BROKEN_IMAGES_JS)
        pics = page.evaluate(SHEET_PICTURES_JS)
        page.close()
        assert len(pics) == 3, pics
        assert any(p["src"].endswith("/open-meter.png") for p in pics), pics  # the top sheet
        for p in pics:
            assert p["natural"] >= 1600, p  # A5 or larger at 200 dpi
            assert p["link"] == p["src"], p  # a click opens it at full size
            full = browser.new_page()
            full.goto(p["src"], wait_until="load")
            # Chromium shows a picture opened on its own fitted to the window; one click
            # shows it at 100 %, pixel for pixel
            full.click("img")
            size = full.evaluate("() => [document.images[0].naturalWidth, "
                                 "document.images[0].width]")
            assert size[0] == size[1] == p["natural"], size
            full.screenshot(path=str(artifacts / f"schematic-{Path(p['src']).stem}.png"))
            full.close()
