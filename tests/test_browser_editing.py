"""Repairing a page in a real browser (Debian's Chromium via Playwright) against real processes (web
server, a worker per queue): a page whose line finder joined two texts of one row, cut one text in
two and missed a faint one is repaired by splitting, merging and drawing; each changed line is read
again by the worker; an edit is undone; the page zooms and pans. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.browser_session import ARTIFACTS, upload_and_wait
from tests.tiny_models import render_text_line

pytestmark = pytest.mark.slow


def badly_found_page() -> tuple[Image.Image, dict[str, list[int]]]:
    """A page the line finder gets wrong: "hello world" and "Jane Doe" too close (found as one line),
    "Paris" and "75001" far apart (found as two), "total 9.50" in faint pencil (not found)."""
    page = Image.new("RGB", (900, 420), "white")
    hello, jane, paris, code = (render_text_line(t) for t in ("hello world", "Jane Doe", "Paris", "75001"))
    faint = np.asarray(render_text_line("total 9.50")).astype(float)
    faint = Image.fromarray((255 - (255 - faint) * 0.05).astype("uint8"))
    places = {
        "hello": (60, 60, hello),
        "jane": (60 + hello.width + 8, 60, jane),
        "paris": (60, 180, paris),
        "code": (60 + paris.width + 150, 180, code),
        "faint": (60, 300, faint),
    }
    for x, y, image in places.values():
        page.paste(image, (x, y))
    return page, {name: [x, y, x + image.width, y + image.height] for name, (x, y, image) in places.items()}


def _screen(page: Page, point: tuple[float, float]) -> tuple[float, float]:
    """Page pixels to screen coordinates, through the outline overlay (its viewBox is the page)."""
    return page.evaluate(
        "([x, y]) => { const svg = document.getElementById('page-overlay'); const r = svg.getBoundingClientRect();"
        " const [, , w, h] = svg.getAttribute('viewBox').split(' ').map(Number); return [r.left + x * r.width / w, r.top + y * r.height / h]; }",
        list(point),
    )


def _lines(page: Page, base: str, page_id: int) -> list[dict]:
    return page.context.request.get(f"{base}/api/v1/pages/{page_id}/lines").json()["lines"]


def _wait_until_read(page: Page, count: int) -> float:
    """Wait for ``count`` outlines and every changed line read again; returns the seconds it took."""
    started = time.perf_counter()
    try:
        expect(page.locator("#page-overlay polygon.outline")).to_have_count(count, timeout=20_000)
    except AssertionError as error:
        raise AssertionError(f"{error}\nthe page said: {page.locator('#edit-status').text_content()!r}") from None
    expect(page.locator(".review-line.pending")).to_have_count(0, timeout=60_000)  # the worker read them again
    return time.perf_counter() - started


def test_a_badly_found_page_is_repaired_by_drawing_splitting_and_merging(
    ui_service, signed_in_page: Page, tmp_path
) -> None:
    base, _ = ui_service
    page = signed_in_page
    image, boxes = badly_found_page()
    scan = tmp_path / "wrong-lines.png"
    image.save(scan)
    upload_and_wait(page, base, scan)
    page.click(".review-link")
    page_id = int(page.locator("#review").get_attribute("data-page-id"))
    found = _lines(page, base, page_id)
    # what the line finder got wrong: the top row is one line, the middle row two, the faint line missing
    assert len(found) == 3, [line["bbox"] for line in found]
    expect(page.locator("#page-overlay polygon.outline")).to_have_count(3)
    page.check("#show-printed")  # Pillow's font reads as print to the text-type classifier: show those lines too

    # zoom with the buttons and the wheel, then back to the whole page
    width = page.locator("#page-image").bounding_box()["width"]
    page.click("#zoom-in")
    page.click("#zoom-in")
    box = page.locator("#page-viewport").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 3)
    page.mouse.wheel(0, -200)
    page.wait_for_function("() => parseFloat(document.getElementById('page-viewport').dataset.zoom) > 1.5")
    assert page.locator("#page-image").bounding_box()["width"] > 1.5 * width
    page.screenshot(path=str(ARTIFACTS / "review-zoomed.png"))
    page.keyboard.press("Alt+0")
    page.wait_for_function("() => parseFloat(document.getElementById('page-viewport').dataset.zoom) === 1")

    # draw the missed faint line
    page.click("#edit-tools [data-mode=draw]")
    x0, y0, x1, y1 = boxes["faint"]
    page.mouse.move(*_screen(page, (x0 + 2, y0 + 2)))
    page.mouse.down()
    page.mouse.move(*_screen(page, ((x0 + x1) / 2, (y0 + y1) / 2)))
    page.mouse.move(*_screen(page, (x1 - 2, y1 - 2)))
    page.mouse.up()
    seconds = {"draw": _wait_until_read(page, 4)}

    # split the top line between "hello world" and "Jane Doe"
    page.click("#edit-tools [data-mode=split]")
    cut = (boxes["hello"][2] + boxes["jane"][0]) / 2
    page.mouse.click(*_screen(page, (cut, (boxes["hello"][1] + boxes["hello"][3]) / 2)))
    seconds["split"] = _wait_until_read(page, 5)

    # merge "Paris" and "75001"
    page.click("#edit-tools [data-mode=merge]")
    for name in ("paris", "code"):
        x0, y0, x1, y1 = boxes[name]
        page.mouse.click(*_screen(page, ((x0 + x1) / 2, (y0 + y1) / 2)))
    seconds["merge"] = _wait_until_read(page, 4)
    print("seconds from edit to the new reading shown:", {k: round(v, 2) for k, v in seconds.items()})

    lines = _lines(page, base, page_id)
    assert all(line["model_text"] is not None and line["tokens"] for line in lines), lines
    centre = lambda line: ((line["bbox"][0] + line["bbox"][2]) / 2, (line["bbox"][1] + line["bbox"][3]) / 2)  # noqa: E731
    inside = lambda name, line: (
        boxes[name][0] - 20 <= centre(line)[0] <= boxes[name][2] + 20
        and boxes[name][1] - 20 <= centre(line)[1] <= boxes[name][3] + 20
    )  # noqa: E731
    # reading order renumbered: hello world, Jane Doe, Paris 75001, the faint line
    assert inside("hello", lines[0]) and inside("jane", lines[1]) and lines[1]["bbox"][0] >= cut - 1
    assert lines[2]["bbox"][0] <= boxes["paris"][0] + 5 and lines[2]["bbox"][2] >= boxes["code"][2] - 5
    assert inside("faint", lines[3]) and [line["number"] for line in lines] == [1, 2, 3, 4]
    # the heat map is drawn for the current line only: moving on clears the line left
    page.locator(f"#line-{lines[0]['id']} input.line-text").click()
    page.keyboard.press("ArrowDown")
    heated = (
        "() => [...document.querySelectorAll('.review-line')].filter(li => { const c = li.querySelector('.line-heat');"
        " if (!c.width || !c.height) return false; const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return true; return false; }).map(li => li.id)"
    )
    page.wait_for_function(f"() => ({heated})().length > 0", timeout=20_000)
    assert page.evaluate(heated) == [f"line-{lines[1]['id']}"]
    # the split's history, seen in the page
    page.locator(f"#line-{lines[0]['id']} details.history summary").click()
    expect(page.locator(f"#line-{lines[0]['id']} details.history")).to_contain_text("split")
    page.screenshot(path=str(ARTIFACTS / "review-repaired.png"), full_page=True)

    # undo the merge: the middle row is two lines again, each read again
    page.keyboard.press("Alt+z")
    _wait_until_read(page, 5)
    assert len(_lines(page, base, page_id)) == 5


def test_a_clerk_finds_a_job_by_file_name_downloads_every_export_searches_and_deletes(
    ui_service, signed_in_page: Page, tmp_path
) -> None:
    base, _ = ui_service
    page, context = signed_in_page, signed_in_page.context
    ids = {}
    for name in ("intake-alpha.png", "claims-beta.png"):
        image, _ = badly_found_page()
        image.save(tmp_path / name)
        upload_and_wait(page, base, tmp_path / name)
        ids[name] = page.url.rstrip("/").rsplit("/", 1)[1]

    # every export is linked once the job has finished, and each one downloads
    expect(page.locator("#downloads")).to_be_visible()
    formats = page.locator("#downloads a:visible").evaluate_all("links => links.map(a => a.dataset.format)")
    job = context.request.get(f"{base}/api/v1/jobs/{ids['claims-beta.png']}").json()
    assert formats == ["txt", "json", "csv", "alto", "pagexml"] + (["fields"] if job["fields"] else [])
    for link in page.locator("#downloads a:visible").all():
        assert context.request.get(base + link.get_attribute("href")).ok

    # the jobs list: file names, pages, submitter, times; filtered by part of a file name
    page.goto(f"{base}/")
    alpha, beta = (page.locator(f"tr[data-job='{ids[name]}']") for name in ("intake-alpha.png", "claims-beta.png"))
    expect(alpha.locator("td.files")).to_have_text("intake-alpha.png")
    expect(alpha.locator("td.pages")).to_have_text("1")
    expect(alpha.locator("td.submitter")).to_have_text("clerk")
    page.fill("input[name=file]", "ALPHA")
    expect(beta).to_have_count(0)
    expect(alpha).to_be_visible()
    assert "file=ALPHA" in page.url
    page.fill("input[name=file]", "")
    expect(beta).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "jobs-list.png"), full_page=True)

    # delete a job: asked first; cancelled, nothing happens; confirmed, it and its data are gone
    page.once("dialog", lambda dialog: dialog.dismiss())
    beta.locator("button.delete-job").click()
    expect(beta).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    beta.locator("button.delete-job").click()
    expect(beta).to_have_count(0)
    expect(page.locator("#jobs-status")).to_contain_text("Deleted")
    assert context.request.get(f"{base}/api/v1/jobs/{ids['claims-beta.png']}").status == 404

    # forgiving search: a line's text with one letter misread still finds it, with its image and a link to it
    lines = context.request.get(f"{base}/api/v1/jobs/{ids['intake-alpha.png']}").json()["pages"][0]["lines"]
    target = max(lines, key=lambda line: len(line["text"]))
    text = target["text"]
    assert len(text) >= 3, text
    middle = len(text) // 2
    misread = text[:middle] + ("x" if text[middle] != "x" else "y") + text[middle + 1 :]
    page.fill("input[name=q]", misread)
    page.press("input[name=q]", "Enter")
    hit = page.locator(f".search-hit:has(a[href$='#line-{target['id']}'])")
    expect(hit).to_have_count(1)
    page.wait_for_function(
        "(id) => { const img = document.querySelector(`.search-hit a[href$='#line-${id}'] ~ img`); return img && img.naturalWidth > 0; }",
        arg=target["id"],
    )
    hit.locator("a").click()
    expect(page.locator(f"#line-{target['id']}")).to_have_class(re.compile(r"\bcurrent\b"))
