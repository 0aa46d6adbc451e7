"""The interactive docs, driven in headless Chromium against a real server, as a person uses them."""

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import LiveServer, needs_browser, save_screenshot

pytestmark = [pytest.mark.browser, needs_browser]

WAIT_SECONDS = 20
SCORE_OPERATION = "#operations-scores-get_score"
RATINGS = {
    "customer_discovery": 3,
    "execution": 3,
    "technical_depth": 2,
    "prioritization": 3,
    "data_driven_decisions": 2,
    "stakeholder_management": 2,
    "communication": 3,
    "cross_functional_leadership": 2,
    "strategic_thinking": 2,
    "market_analysis": 2,
    "business_acumen": 2,
    "mentoring_and_coaching": 1,
    "handling_scale": 2,
    "organization_building": 1,
}


@pytest.fixture(scope="module")
def assessed_subject(live_server: LiveServer) -> str:
    """A subject with one manager assessment on the built-in ladder, so it has a score."""
    yesterday = datetime.now(UTC) - timedelta(days=1)
    with httpx.Client(base_url=live_server.base_url, headers=live_server.headers) as api:
        r = api.post("/v1/subjects", json={"external_ref": "emp-1", "track": "management"})
        assert r.status_code == 201, r.text
        r = api.post(
            "/v1/assessments",
            json={
                "subject_ref": "emp-1",
                "framework": {"key": "product-management"},
                "rater_ref": "m1",
                "rater_role": "manager",
                "assessed_at": yesterday.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ratings": [{"competency": k, "proficiency": v} for k, v in RATINGS.items()],
            },
        )
        assert r.status_code == 201, r.text
    return "emp-1"


def shown(
    driver: webdriver.Chrome,
    selector: str,
    within: WebElement | None = None,
    by: str = By.CSS_SELECTOR,
) -> WebElement:
    """The first visible element matching SELECTOR (inside WITHIN when given), once there is one."""
    root = within or driver
    found = WebDriverWait(driver, WAIT_SECONDS).until(
        lambda _: next((e for e in root.find_elements(by, selector) if e.is_displayed()), None),
        f"nothing visible matches {selector!r}",
    )
    assert found is not None  # until() returns only a truthy value or raises
    return found


def button(driver: webdriver.Chrome, label: str, within: WebElement) -> WebElement:
    """The visible button inside WITHIN whose text is LABEL."""
    return shown(driver, f".//button[normalize-space()='{label}']", within, by=By.XPATH)


def click(driver: webdriver.Chrome, css: str, within: WebElement | None = None) -> None:
    """Click the element matching CSS once it is visible and enabled."""
    element = shown(driver, css, within)
    WebDriverWait(driver, WAIT_SECONDS).until(ec.element_to_be_clickable(element))
    element.click()


def fetched_elsewhere(driver: webdriver.Chrome, base_url: str) -> set[str]:
    """Every URL the page asked for (scripts, styles, fonts, images, XHR) outside BASE_URL."""
    urls: list[str] = driver.execute_script(
        "return [location.href, ...performance.getEntriesByType('resource').map(e => e.name)]"
    )
    return {url for url in urls if not url.startswith(f"{base_url}/")}


def test_try_out_the_score_endpoint_in_swagger_ui(
    request: pytest.FixtureRequest,
    live_server: LiveServer,
    assessed_subject: str,
    chrome: webdriver.Chrome,
) -> None:
    chrome.get(f"{live_server.base_url}/docs")
    shown(chrome, ".swagger-ui .information-container .title")

    click(chrome, ".auth-wrapper button.authorize")
    modal = shown(chrome, ".dialog-ux .modal-ux")
    shown(chrome, "input#auth-bearer-value", modal).send_keys(live_server.admin_key)
    button(chrome, "Authorize", modal).click()
    button(chrome, "Logout", modal)  # the key is accepted: the form now offers to log out
    button(chrome, "Close", modal).click()

    operation = shown(chrome, SCORE_OPERATION)
    click(chrome, ".opblock-summary", operation)
    click(chrome, "button.try-out__btn", operation)
    ref_field = shown(chrome, 'tr[data-param-name="ref"] input', operation)
    ref_field.clear()  # the documented example pre-fills the field
    ref_field.send_keys(assessed_subject)
    click(chrome, "button.execute", operation)

    response = shown(chrome, ".live-responses-table .response", operation)
    status = shown(chrome, ".response-col_status", response).text.strip()
    body_text = shown(chrome, ".response-col_description pre", response).text
    chrome.execute_script("arguments[0].scrollIntoView({block: 'center'})", response)
    path = save_screenshot(request.config, chrome, "docs-score.png")  # named in the run's summary

    assert status == "200", body_text
    body = json.loads(body_text)
    assert body["subject_ref"] == assessed_subject
    assert "level_index" in body
    assert "attained_level" in body
    curl = shown(chrome, ".curl-command", operation).text
    assert "Authorization: Bearer" in curl
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert path.stat().st_size > 10_000
    assert fetched_elsewhere(chrome, live_server.base_url) == set()


def test_redoc_renders_from_local_assets(live_server: LiveServer, chrome: webdriver.Chrome) -> None:
    chrome.get(f"{live_server.base_url}/redoc")
    heading = shown(chrome, ".api-info h1")
    assert heading.text.startswith("Competency Ladder")
    shown(chrome, "[data-section-id='tag/scores']")
    assert chrome.title == "Competency Ladder — reference"
    # Nothing from elsewhere, not even ReDoc's footer logo (the bundle is served without it).
    assert fetched_elsewhere(chrome, live_server.base_url) == set()
