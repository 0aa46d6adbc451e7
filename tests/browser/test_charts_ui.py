"""The quickstart person's charts in a real browser: embedded in a page, and in `/docs`."""

import base64
import html
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from app.charts.negotiate import PNG, SVG
from tests.browser.conftest import LiveServer, needs_browser, save_screenshot
from tests.browser.test_docs_ui import SCORE_OPERATION, WAIT_SECONDS, button, click, shown
from tools.charts import SUBJECT, quickstart_requests

pytestmark = [pytest.mark.browser, needs_browser]

# The share of a screenshot's pixels that are not white: a drawn chart has axes, bars and text.
MIN_INK = 0.01
INK_SCRIPT = """
const [data, done] = arguments;
const img = new Image();
img.onload = () => {
  const canvas = document.createElement('canvas');
  canvas.width = img.width; canvas.height = img.height;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const px = ctx.getImageData(0, 0, img.width, img.height).data;
  let ink = 0;
  for (let i = 0; i < px.length; i += 4) {
    if (px[i] < 240 || px[i + 1] < 240 || px[i + 2] < 240) ink++;
  }
  done(ink / (px.length / 4));
};
img.onerror = () => done(-1);
img.src = 'data:image/png;base64,' + data;
"""


@pytest.fixture(scope="module")
def quickstart_person(live_server: LiveServer) -> str:
    """Ada, rated by her manager, a peer and herself as in examples/quickstart.sh."""
    with httpx.Client(base_url=live_server.base_url, headers=live_server.headers) as api:
        for path, body in quickstart_requests():
            r = api.post(path, json=body)
            assert r.status_code == 201, r.text
    return SUBJECT


def ink(driver: webdriver.Chrome, png: Path) -> float:
    """The share of non-white pixels in a PNG, decoded by the browser itself."""
    data = base64.b64encode(png.read_bytes()).decode()
    driver.set_script_timeout(WAIT_SECONDS)
    share: float = driver.execute_async_script(INK_SCRIPT, data)
    return share


def test_a_page_embedding_the_score_svg_shows_the_chart(
    request: pytest.FixtureRequest,
    live_server: LiveServer,
    quickstart_person: str,
    chrome: webdriver.Chrome,
    tmp_path: Path,
) -> None:
    with httpx.Client(base_url=live_server.base_url, headers=live_server.headers) as api:
        r = api.get(f"/v1/subjects/{quickstart_person}/score", headers={"Accept": SVG})
    assert r.status_code == 200 and r.headers["content-type"] == SVG
    page = tmp_path / "dashboard.html"
    page.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>Dashboard</title></head>"
        "<body style='margin:16px;background:#fff'><h1>Ada</h1>"
        f"<figure id='score'>{r.text}</figure>"
        f"<img id='as-image' alt='{html.escape('score chart')}' "
        f"src='data:image/svg+xml;base64,{base64.b64encode(r.content).decode()}'>"
        "</body></html>",
        encoding="utf-8",
    )
    chrome.get(page.as_uri())
    svg = shown(chrome, "#score svg")
    # The accessible name a screen reader announces is the chart's title.
    labelled_by = svg.get_attribute("aria-labelledby") or ""
    title_id = labelled_by.split()[0]
    title = chrome.find_element(By.ID, title_id).get_attribute("textContent") or ""
    assert svg.get_attribute("role") == "img"
    assert title.startswith(f"{quickstart_person}: competencies against")
    assert svg.size["width"] > 300 and svg.size["height"] > 300
    image = chrome.find_element(By.ID, "as-image")
    assert chrome.execute_script("return arguments[0].naturalWidth", image) > 300
    shot = save_screenshot(request.config, chrome, "chart-embedded-score.png")
    (tmp_path / shot.name).write_bytes(shot.read_bytes())
    assert ink(chrome, shot) > MIN_INK


def open_score_in_docs(driver: webdriver.Chrome, server: LiveServer, ref: str) -> Any:
    """Swagger UI authorized, with the score read opened for "Try it out"; its element."""
    driver.get(f"{server.base_url}/docs")
    click(driver, ".auth-wrapper button.authorize")
    modal = shown(driver, ".dialog-ux .modal-ux")
    shown(driver, "input#auth-bearer-value", modal).send_keys(server.admin_key)
    button(driver, "Authorize", modal).click()
    button(driver, "Close", modal).click()
    operation = shown(driver, SCORE_OPERATION)
    click(driver, ".opblock-summary", operation)
    click(driver, "button.try-out__btn", operation)
    ref_field = shown(driver, 'tr[data-param-name="ref"] input', operation)
    ref_field.clear()
    ref_field.send_keys(ref)
    return operation


def execute_as(driver: webdriver.Chrome, operation: Any, media: str) -> Any:
    """Execute with the Responses section's media type (the request's Accept) set to `media`;
    the live response's element once it is 200."""
    Select(shown(driver, ".response-control-media-type select", operation)).select_by_value(media)
    click(driver, "button.execute", operation)
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda _: media in shown(driver, ".curl-command", operation).text
    )
    response = shown(driver, ".live-responses-table .response", operation)
    assert shown(driver, ".response-col_status", response).text.strip() == "200"
    return response


def test_docs_show_the_score_chart(
    request: pytest.FixtureRequest,
    live_server: LiveServer,
    quickstart_person: str,
    chrome: webdriver.Chrome,
) -> None:
    """PNG is drawn as a picture by Swagger UI itself; SVG, which it shows as XML source, is
    drawn above its source by the docs page's plugin."""
    operation = open_score_in_docs(chrome, live_server, quickstart_person)
    response = execute_as(chrome, operation, PNG)
    picture = shown(chrome, ".response-col_description img", response)
    assert chrome.execute_script("return arguments[0].naturalWidth", picture) > 300
    chrome.execute_script("arguments[0].scrollIntoView({block: 'center'})", picture)
    shot = save_screenshot(request.config, chrome, "docs-score-png.png")
    assert ink(chrome, shot) > MIN_INK

    response = execute_as(chrome, operation, SVG)
    source = shown(chrome, ".response-col_description pre", response).text
    assert source.startswith("<svg") and "<title" in source and "<desc" in source
    drawn = shown(chrome, ".response-col_description img.svg-preview", response)
    WebDriverWait(chrome, WAIT_SECONDS).until(
        lambda _: chrome.execute_script("return arguments[0].naturalWidth", drawn) > 300
    )
    chrome.execute_script("arguments[0].scrollIntoView({block: 'center'})", drawn)
    shot = save_screenshot(request.config, chrome, "docs-score-svg.png")
    assert ink(chrome, shot) > MIN_INK
