"""The playground in a real headless browser (Debian's Chromium driven by Selenium) against a
real server: `/` leads to it, it loads with no console errors on a phone-width screen, embeds
three texts into a 3x3 matrix equal to the API's cosines, ranks them by the query, shows the
request to copy, and works with an API key (which it needs)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import ServerProcess, start_server
from tests.e2e.shared import MODEL_ID, TIMEOUT_S
from tests.models.tiny_models import build_cross_encoder

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    pytest.skip(
        "no browser: `apt-get install chromium chromium-driver` (as root; .ci/run does)",
        allow_module_level=True,
    )
TEXTS = ["The cat sits on the mat.", "A kitten rests on a rug.", "Stock markets fell today."]
QUERY = "Where is the cat?"
ARTEFACTS = Path(__file__).parents[2] / ".cache" / "test-artefacts"  # ignored by git


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    phone = {"deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 3.0}}
    options.add_experimental_option("mobileEmulation", phone)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(browser: Any, condition: Any, timeout: float = TIMEOUT_S) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(condition)


def fill(browser: Any, element_id: str, text: str) -> None:
    element = browser.find_element("id", element_id)
    element.clear()
    element.send_keys(text)


def open_page(browser: Any, url: str) -> None:
    """Load `url`, with the console log of earlier pages dropped."""
    browser.get_log("browser")
    browser.get(url)


def embed_in_page(browser: Any, base_url: str, key: str | None = None) -> np.ndarray:
    """Open `/`, choose nothing (the default model), type the texts and the query, press
    Embed; the matrix the page shows, at full precision."""
    open_page(browser, base_url + "/")
    assert browser.current_url == base_url + "/playground"
    if key is not None:
        assert browser.find_element("id", "api-key").is_displayed()
        fill(browser, "api-key", key)
        browser.execute_script(
            "document.getElementById('api-key').dispatchEvent(new Event('change'))"
        )
    wait_for(
        browser,
        lambda b: b.execute_script("return document.getElementById('model').options.length") > 0,
    )
    fill(browser, "texts", "\n".join(TEXTS))
    fill(browser, "query", QUERY)
    browser.find_element("id", "embed").click()
    wait_for(browser, lambda b: len(b.find_elements("css selector", "#matrix td[data-i]")) == 9)
    cells = browser.find_elements("css selector", "#matrix td[data-i]")
    matrix = np.zeros((3, 3))
    for cell in cells:
        matrix[int(cell.get_attribute("data-i")), int(cell.get_attribute("data-j"))] = float(
            cell.get_attribute("data-value")
        )
    return matrix


def api_cosines(base_url: str, headers: dict[str, str] | None = None) -> np.ndarray:
    body = {"model": MODEL_ID, "input": TEXTS, "encoding_format": "float"}
    response = httpx.post(base_url + "/v1/embeddings", json=body, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    vectors = np.array([item["embedding"] for item in response.json()["data"]])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors @ vectors.T


def score_text(item: Any) -> str:
    """The score the page shows before a ranked text."""
    return str(item.find_element("css selector", ".score").text)


def severe_console_messages(browser: Any) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def test_page_embeds_three_texts_like_the_api(real_server: ServerProcess, browser: Any) -> None:
    matrix = embed_in_page(browser, real_server.base_url)
    np.testing.assert_allclose(matrix, api_cosines(real_server.base_url), atol=1e-5)
    ranking = [item.text for item in browser.find_elements("css selector", "#ranking li")]
    assert len(ranking) == 3 and ranking[0].endswith(TEXTS[0]), ranking  # the cat, first
    counts = [
        cell.text for cell in browser.find_elements("css selector", "#matrix tr th:first-child")
    ]
    tokenized = httpx.post(real_server.base_url + "/tokenize", json={"input": TEXTS}).json()
    assert counts[1:] == [str(item["count"]) for item in tokenized["data"]], counts
    assert "client.embeddings.create" in browser.find_element("id", "python").text
    assert "/v1/embeddings" in browser.find_element("id", "curl").text
    assert "ms" in browser.find_element("id", "latency").text
    assert not browser.find_element("id", "error").text
    width = "return [document.documentElement.scrollWidth, window.innerWidth]"
    page_width, screen_width = browser.execute_script(width)
    assert screen_width == 390 and page_width <= screen_width  # fits a phone's width
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTEFACTS / "playground.png"))
    assert severe_console_messages(browser) == []


def test_page_with_an_api_key(browser: Any, tmp_path: Path, onnx_cache_dir: Path) -> None:
    args = ["--cache-dir", str(onnx_cache_dir), "--api-key", "sesame"]
    server = start_server(args, tmp_path / "server.log")
    try:
        open_page(browser, server.base_url + "/playground")
        wait_for(browser, lambda b: "401" in b.find_element("id", "error").text)
        matrix = embed_in_page(browser, server.base_url, key="sesame")
        expected = api_cosines(server.base_url, {"authorization": "Bearer sesame"})
        np.testing.assert_allclose(matrix, expected, atol=1e-5)
        assert "sesame" not in browser.find_element("id", "curl").text  # never shown
        assert "EMBEDSERVE_API_KEY" in browser.find_element("id", "curl").text
    finally:
        server.stop()


def test_rerank_tab_when_a_reranker_is_served(
    browser: Any, tmp_path: Path, onnx_cache_dir: Path
) -> None:
    reranker = build_cross_encoder(tmp_path / "reranker", seed=4)
    args = ["--model", MODEL_ID, "--model", str(reranker), "--cache-dir", str(onnx_cache_dir)]
    server = start_server(args, tmp_path / "server.log")
    try:
        open_page(browser, server.base_url + "/playground")
        tab = wait_for(
            browser,
            lambda b: (
                b.find_element("id", "tab-rerank").is_displayed()
                and b.find_element("id", "tab-rerank")
            ),
        )
        tab.click()
        assert browser.find_element("id", "model").get_attribute("value") == "reranker"
        fill(browser, "rerank-query", QUERY)
        fill(browser, "documents", "\n".join(TEXTS))
        browser.find_element("id", "rerank").click()
        wait_for(browser, lambda b: len(b.find_elements("css selector", "#reranked li")) == 3)
        shown = [
            (float(item.get_attribute("data-score")), item.text.split(score_text(item), 1)[1])
            for item in browser.find_elements("css selector", "#reranked li")
        ]
        body = {"model": "reranker", "query": QUERY, "documents": TEXTS}
        results = httpx.post(server.base_url + "/v1/rerank", json=body, timeout=60).json()
        expected = [(r["relevance_score"], TEXTS[r["index"]]) for r in results["results"]]
        assert [text for _, text in shown] == [text for _, text in expected]
        np.testing.assert_allclose([s for s, _ in shown], [s for s, _ in expected], atol=1e-6)
        assert "/v1/rerank" in browser.find_element("id", "curl").text
        assert severe_console_messages(browser) == []
    finally:
        server.stop()
