"""The spawn page in headless Chromium against a real hub: cards, placements, start,
launch links (good and bad) and moving a server to another GPU with its files."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import httpx
import psutil
import pytest
from browser_hub import VENV_PYTHON, PageHub, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

REPO = Path(__file__).resolve().parents[3]
SCREENSHOT = REPO / "docs" / "images" / "spawn-page.png"
START_TIMEOUT = 120_000  # ms: a server start on a busy 2-core machine


def user_options(hub: PageHub, server: str = "") -> dict:
    servers = hub.api("GET", "/users/alice").json()["servers"]
    return servers[server]["user_options"] if server in servers else {}


def notebooks(hub: PageHub) -> Path:
    return hub.data_dir / "users" / "alice" / "thinkube" / "notebooks"


async def test_cards_and_placements(page_hub, page):
    await sign_in(page, page_hub)
    await page.goto(page_hub.url + "/hub/spawn")
    cards = page.locator('input[name="image"]')
    names = [await cards.nth(i).get_attribute("value") for i in range(await cards.count())]
    assert names == ["python", "data-science", "pytorch", "teaching"]
    assert await page.locator("#tk-image-python").is_checked()  # the default
    # JavaScript: a CPU-only environment turns the GPU choices off, with the reason
    await page.click('label[for="tk-image-teaching"]')
    gpu0 = page.locator('input[name="gpu"][value="device:0"]')
    assert await gpu0.is_disabled()
    reason = await page.locator("#" + await gpu0.get_attribute("aria-describedby")).inner_text()
    assert reason == "Teaching runs on CPU only"
    assert await page.locator('input[name="gpu"][value="none"]').is_checked()
    await page.click('label[for="tk-image-pytorch"]')
    assert await gpu0.is_enabled()
    assert "8 CPU · 32 GiB" in await page.locator("#tk-sizes").inner_text()
    # keyboard: arrow keys move between environment cards
    await page.focus("#tk-image-pytorch")
    await page.keyboard.press("ArrowRight")
    assert await page.locator("#tk-image-teaching").is_checked()
    await page.keyboard.press("ArrowLeft")
    await page.click('label[for="tk-gpu-3"]')  # GPU 0 (rows: none, auto, model, GPU 0, GPU 1)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOT), full_page=True)


async def start_on_gpu0_with_a_notebook(page_hub: PageHub, page) -> None:
    """Alice's server from the form (pytorch on GPU 0), and a notebook saved in it."""
    page_hub.stop_servers("alice")  # a test on its own starts from no server
    await sign_in(page, page_hub)
    await page.goto(page_hub.url + "/hub/spawn")
    await page.click('label[for="tk-image-pytorch"]')
    await page.check('input[name="gpu"][value="device:0"]')
    await page.click('#spawn_form button[type="submit"]')
    await page.wait_for_url(re.compile(r"/user/alice/lab"), timeout=START_TIMEOUT)
    await page.wait_for_selector(".jp-DirListing", timeout=START_TIMEOUT)
    created = await page.evaluate(
        """async () => {
            const xsrf = document.cookie.match(/_xsrf=([^;]+)/);
            const r = await fetch("/user/alice/api/contents/notebooks/kept.ipynb", {
                method: "PUT",
                headers: {"Content-Type": "application/json",
                          "X-XSRFToken": xsrf ? decodeURIComponent(xsrf[1]) : ""},
                body: JSON.stringify({type: "notebook", content: {cells: [], metadata: {},
                                      nbformat: 4, nbformat_minor: 5}}),
            });
            return r.status;
        }"""
    )
    assert created in (200, 201)  # 200: an earlier test of the module saved it


async def test_start_lands_in_jupyterlab_in_notebooks(page_hub, page):
    await start_on_gpu0_with_a_notebook(page_hub, page)
    assert user_options(page_hub)["image"] == ["pytorch"]
    assert user_options(page_hub)["gpu"] == ["device:0"]
    # the root is thinkube/: the saved notebook is in notebooks on disk, and the file
    # browser, opened in notebooks, goes up to datasets and models beside it
    assert (notebooks(page_hub) / "kept.ipynb").exists()
    await page.reload()
    await page.wait_for_selector('.jp-DirListing-item[title*="kept.ipynb"]', timeout=30_000)
    await page.locator(".jp-BreadCrumbs-home").click()
    for beside in ("notebooks", "datasets", "models"):
        item = page.locator(f'.jp-DirListing-item[data-file-type="directory"] >> text="{beside}"')
        await item.wait_for(timeout=30_000)


async def test_move_to_another_gpu_keeps_the_notebook(page_hub, page):
    await start_on_gpu0_with_a_notebook(page_hub, page)
    started = await page.evaluate(
        """async () => {
            const xsrf = document.cookie.match(/_xsrf=([^;]+)/);
            const r = await fetch("/user/alice/api/kernels", {method: "POST",
                headers: {"X-XSRFToken": xsrf ? decodeURIComponent(xsrf[1]) : ""}});
            return r.status;
        }"""
    )
    assert started == 201
    await page.goto(page_hub.url + "/hub/home")
    row = page.locator(".tk-move-row")
    assert "pytorch · 0" in await row.inner_text()
    await row.locator(".tk-move-btn").click()
    dialog = page.locator("#tk-move-dialog")
    await dialog.wait_for(state="visible")
    assert "1 kernel is running" in await dialog.inner_text()
    await page.click("#tk-move-confirm")
    await page.wait_for_url(re.compile(r"/hub/spawn/alice$"), timeout=START_TIMEOUT)
    # the old selection is preselected; choose the other GPU and start
    assert await page.locator("#tk-image-pytorch").is_checked()
    assert await page.locator('input[name="gpu"][value="device:0"]').is_checked()
    await page.check('input[name="gpu"][value="device:1"]')
    await page.click('#spawn_form button[type="submit"]')
    await page.wait_for_url(re.compile(r"/user/alice/lab"), timeout=START_TIMEOUT)
    await page.wait_for_selector(".jp-DirListing", timeout=START_TIMEOUT)
    assert user_options(page_hub)["gpu"] == ["device:1"]
    # the file browser opens in notebooks, where the notebook still is
    await page.wait_for_selector('.jp-DirListing-item[title*="kept.ipynb"]', timeout=30_000)


async def test_launch_link_after_sign_in(page_hub, page):
    link = "/hub/spawn/alice/linked?image=teaching&gpu=none"
    await page.goto(page_hub.url + link)
    assert "/hub/login" in page.url  # signed out: the login page keeps the link as next
    await page.fill("#username_input", "alice")
    await page.fill("#password_input", "any")
    await page.click("#login_submit")
    await page.wait_for_url(re.compile(r"/user/alice/linked/"), timeout=START_TIMEOUT)
    assert user_options(page_hub, "linked") == {"image": ["teaching"], "gpu": ["none"]}
    page_hub.api("DELETE", "/users/alice/servers/linked")


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("image=nope&gpu=auto", "image: there is no environment named 'nope'"),
        ("image=retired", "image: there is no environment named 'retired'"),
        ("image=lab-only", "image: there is no environment named 'lab-only'"),
        ("image=teaching&gpu=auto", "gpu: Teaching runs on CPU only"),
        ("image=pytorch&gpu=device:0&count=3", "count: at most 1 GPU(s) are free"),
        ("image=pytorch&gpu=device:7", "gpu: there is no GPU '7' on this machine"),
    ],
)
async def test_bad_launch_link_is_400_and_spawns_nothing(page_hub, page, query, reason):
    page_hub.stop_servers("alice")  # the reasons are those of a machine with both GPUs free
    await sign_in(page, page_hub)
    response = await page.goto(page_hub.url + "/hub/spawn/alice/bad?" + query)
    assert response.status == 400
    message = await page.locator(".spawn-error-msg").inner_text()
    assert message.startswith("Error: This launch link cannot start a server: ")
    assert reason in message
    assert "bad" not in page_hub.api("GET", "/users/alice").json()["servers"]


async def test_hub_api_still_answers(page_hub):
    assert httpx.get(page_hub.api_url + "/").status_code == 200


async def test_environment_removed_while_the_page_was_open(page_hub, page):
    body = {"name": "short-lived", "kind": "local", "python": VENV_PYTHON, "gpu": "none"}
    assert page_hub.catalog("POST", "/images", json=body).status_code in (200, 201)
    await sign_in(page, page_hub)
    await page.goto(page_hub.url + "/hub/spawn/alice/gone")
    await page.click('label[for="tk-image-short-lived"]')
    assert page_hub.catalog("DELETE", "/images/short-lived").status_code in (200, 204)
    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await page.click('#spawn_form button[type="submit"]')
    assert (await posted.value).status == 400
    message = await page.locator(".spawn-error-msg").inner_text()
    assert "image: there is no environment named 'short-lived'" in message
    assert "Choose below and press Start" in message
    assert "gone" not in page_hub.api("GET", "/users/alice").json()["servers"]


async def test_form_works_without_javascript(page_hub, browser):
    page_hub.stop_servers("alice")  # GPU 0 free, so the check below means "not scripted"
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    try:
        await sign_in(page, page_hub)
        await page.goto(page_hub.url + "/hub/spawn/alice/plain")
        await page.click('label[for="tk-image-teaching"]')
        await page.click('label:has(input[name="gpu"][value="none"])')
        # without the script nothing is turned off: the hub's check is what counts
        assert await page.locator('input[name="gpu"][value="device:0"]').is_enabled()
        await page.click('#spawn_form button[type="submit"]')
        await page.wait_for_url(re.compile(r"/spawn-pending/alice/plain|/user/alice/plain/"))
        for _ in range(600):
            servers = page_hub.api("GET", "/users/alice").json()["servers"]
            if servers.get("plain", {}).get("ready"):
                break
            await asyncio.sleep(0.2)
        assert servers["plain"]["user_options"]["image"] == ["teaching"]
    finally:
        page_hub.api("DELETE", "/users/alice/servers/plain")
        await context.close()


async def test_a_gpu_taken_after_the_check_is_refused_by_the_ledger(page_hub):
    """A start that bypasses the form (REST API) meets the ledger: exact reason, nothing runs."""
    page_hub.stop_servers("alice")
    held = page_hub.api("POST", "/users/admin/server", json={"image": "pytorch", "gpu": "device:0"})
    assert held.status_code in (201, 202), held.text
    try:
        for _ in range(300):
            if (page_hub.api("GET", "/users/admin").json()["servers"].get("") or {}).get("ready"):
                break
            time.sleep(0.2)
        # the ledger ties the hold to the server's process: how `tkhub up` knows it alive
        bound = json.loads((page_hub.data_dir / "state" / "gpu-ledger.json").read_text())
        pid, started = bound["processes"]["admin/"]
        assert psutil.Process(pid).create_time() == pytest.approx(started, abs=0.5)
        taken = page_hub.api(
            "POST", "/users/alice/server", json={"image": "pytorch", "gpu": "device:0"}
        )
        assert taken.status_code >= 400, taken.text
        assert "GPU 0 was taken by another server; choose again" in taken.json()["message"]
        assert not page_hub.api("GET", "/users/alice").json()["servers"]
    finally:
        page_hub.stop_servers("admin")
