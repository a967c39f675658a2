"""The review UI in a real browser: Debian's Chromium driven by Playwright, against real processes.

Sign in, upload a form, wait for it to be read, open the review page, check that the line
outlines and the attention heat map are drawn (screenshots go to test-artifacts/), see printed
labels hidden until asked for and the fields panel, correct a value in place there, correct a
line with the keyboard alone, see its history, and find the corrections in the exports.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser_session import ARTIFACTS, CLERK, upload_and_wait
from tests.forms import handwriting_fonts, make_form

pytestmark = pytest.mark.slow


def test_review_a_form_end_to_end(ui_service, signed_in_page: Page, tmp_path: Path) -> None:
    base, _ = ui_service
    page, context = signed_in_page, signed_in_page.context
    form = make_form(7, handwriting_fonts())
    scan = tmp_path / "form.png"
    form.image.save(scan)
    upload_and_wait(page, base, scan)
    job_url = page.url
    expect(page.locator("#job-rows, .review-link").first).to_be_visible()
    page.click(".review-link")

    # outlines over the page: one per line, coloured by confidence
    outlines = page.locator("#page-overlay polygon")
    expect(outlines).to_have_count(len(form.lines), timeout=20_000)
    lines = page.locator(".review-line")
    expect(lines).to_have_count(len(form.lines))
    # printed labels are hidden by default, one click shows them
    visible = page.locator(".review-line:not([hidden])")
    assert 0 < visible.count() < len(form.lines), "printed lines start hidden"
    page.check("#show-printed")
    expect(visible).to_have_count(len(form.lines))
    page.uncheck("#show-printed")
    first_input = page.locator(".review-line:not([hidden]) input.line-text").first
    first_input.click()
    first_input.press("End")
    page.wait_for_function(
        "() => { const c = document.getElementById('page-heat'); "
        "if (!c.width) return false; const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; "
        "for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return true; return false; }",
        timeout=20_000,
    )
    line_heat = page.evaluate(  # on the line being edited (the first line may be a hidden printed one)
        "() => { const c = document.activeElement.closest('li').querySelector('.line-heat'); "
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let s = 0; for (let i = 3; i < d.length; i += 4) s += d[i]; return s; }"
    )
    assert line_heat > 0, "the line's heat map is drawn"
    page.screenshot(path=str(ARTIFACTS / "review-page.png"), full_page=True)

    # the fields panel pairs labels with values; a value corrected there updates its line and field
    expect(page.locator("#fields")).to_be_visible()
    assert page.locator("#field-list dt").count() >= 3
    field_input = page.locator("#field-list input.field-input").first
    line_id = field_input.get_attribute("data-line-id")
    field_input.fill("Fixed in the field")
    field_input.press("Enter")
    expect(page.locator(f"#line-{line_id} input.line-text")).to_have_value("Fixed in the field")
    page.screenshot(path=str(ARTIFACTS / "review-fields.png"), full_page=True)

    # keyboard only: go to the second line, replace its text, save with Enter
    first_input.click()
    page.keyboard.press("ArrowDown")
    focused_id = page.evaluate("() => document.activeElement.closest('li').id")
    page.keyboard.press("Control+a")
    page.keyboard.type("Corrected by keyboard")
    page.keyboard.press("Enter")
    second = page.locator(f"#{focused_id}")
    expect(second.locator(".badge")).to_contain_text("corrected")
    # Enter moves on to the next line once saved (this line may already show "corrected", from the fields panel)
    page.wait_for_function(
        f"() => {{ const li = document.activeElement.closest('li'); return li && li.id !== '{focused_id}'; }}",
        timeout=20_000,
    )
    expect(second.locator("input.line-text")).to_have_value("Corrected by keyboard")

    # F8 jumps to the next low-confidence line; Ctrl+Shift+Enter marks the page reviewed
    page.keyboard.press("F8")
    page.keyboard.press("Control+Shift+Enter")
    expect(page.locator("#page-state")).to_contain_text("reviewed")

    second.locator("details.history summary").click()
    expect(second.locator("details.history")).to_contain_text("→ “Corrected by keyboard”")
    expect(second.locator("details.history")).to_contain_text("clerk")
    page.screenshot(path=str(ARTIFACTS / "review-corrected.png"), full_page=True)

    job_id = job_url.rstrip("/").rsplit("/", 1)[1]
    exported = context.request.get(f"{base}/api/v1/jobs/{job_id}/result?format=txt")
    assert exported.ok and "Corrected by keyboard" in exported.text()
    job_json = context.request.get(f"{base}/api/v1/jobs/{job_id}").json()
    # each corrected line's field follows it: the first field's value (corrected in the panel) and
    # the second handwritten line's (corrected with the keyboard; printed lines are hidden)
    by_value_line = {field["value_line_ids"][0]: field for field in job_json["fields"] if field["value_line_ids"]}
    keyboard_line = int(focused_id.removeprefix("line-"))
    assert job_json["fields"][0]["value_line_ids"] == [int(line_id)] and keyboard_line != int(line_id)
    assert job_json["fields"][0]["value"] == "Fixed in the field" and job_json["fields"][0]["corrected"]
    keyboard_field = by_value_line[keyboard_line]
    assert keyboard_field["value"] == "Corrected by keyboard" and keyboard_field["corrected"]
    fields_csv = context.request.get(f"{base}/api/v1/jobs/{job_id}/result?format=fields").text()
    assert ",Corrected by keyboard," in fields_csv
    csv_text = context.request.get(f"{base}/api/v1/jobs/{job_id}/result?format=csv").text()
    assert "Corrected by keyboard,," in csv_text or ",Corrected by keyboard," in csv_text

    # the jobs list shows it, filters work
    page.goto(f"{base}/")
    expect(page.locator(f"tr[data-job='{job_id}']")).to_be_visible()
    page.select_option("select[name=status]", "failed")
    expect(page.locator(f"tr[data-job='{job_id}']")).to_have_count(0)
    page.select_option("select[name=status]", "succeeded")
    expect(page.locator(f"tr[data-job='{job_id}']")).to_be_visible()

    # search finds the correction
    page.fill("input[name=q]", "keyboard")
    page.press("input[name=q]", "Enter")
    expect(page.locator(".hits li")).to_have_count(1)


def test_anonymous_visitors_see_only_the_sign_in_page(ui_service, browser) -> None:
    base, _ = ui_service
    page = browser.new_page()
    try:
        page.goto(f"{base}/search?q=x")
        expect(page.locator("h1")).to_have_text("Sign in")
        page.fill("#username", CLERK)
        page.fill("#password", "wrong password!")
        page.press("#password", "Enter")
        expect(page.locator(".error")).to_contain_text("Wrong username or password")
    finally:
        page.close()
