"""Previews play in the real MLflow UI: a real `mlflow server` on 127.0.0.1, a real browser (Debian's
chromium driven by Playwright), a finished training run's preview page opened as a user would.

The set-up installs the `chromium` package with apt when it is missing and the tests run as root; the
MLflow server is started and stopped by a fixture. Marked `browser` (a system test; CI runs it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import TINY
from wavegan.cli.app import compose
from wavegan.training.run import train

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"


def chromium_path() -> str:
    path = shutil.which("chromium") or (CHROMIUM if os.path.exists(CHROMIUM) else None)
    if path is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
            subprocess.run(command, env=env, check=True, capture_output=True, timeout=900)
        path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "no chromium: install Debian's package (apt-get install chromium) to run the browser tests"
        )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """`mlflow server` on 127.0.0.1 with its own SQLite store and artifact folder; stopped afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
            "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1",
        ],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        for _ in range(240):  # bounded: at most ~2 minutes
            if server.poll() is not None:
                pytest.fail(f"mlflow server exited: {(tmp_path / 'server.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not answer on /health within 2 minutes")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_a_runs_preview_page_shows_its_image_and_plays_its_audio_in_the_mlflow_ui(mlflow_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    result = train(compose([*TINY, "tracking.experiment=ui-test", "tracking.log_model=false"]))
    import mlflow

    experiment_id = mlflow.get_run(result.run_id).info.experiment_id
    page_url = (
        f"{mlflow_server}/#/experiments/{experiment_id}/runs/{result.run_id}"
        "/artifacts/previews/step_000002/index.html"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(),
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        try:
            page = browser.new_page()
            page.goto(page_url)
            page.wait_for_selector("iframe", timeout=60_000)
            frame = page.frame_locator("iframe").first
            image = frame.locator("img")
            image.wait_for(timeout=60_000)
            audio = frame.locator("audio").first
            # the embedded image decoded, and the audio element loaded real audio and plays
            assert image.evaluate("img => img.complete && img.naturalWidth") > 0
            duration = audio.evaluate(
                """a => new Promise((resolve, reject) => {
                    if (a.readyState >= 1) return resolve(a.duration);
                    a.addEventListener('loadedmetadata', () => resolve(a.duration));
                    a.addEventListener('error', () => reject(new Error('audio error ' + a.error?.code)));
                    a.load();
                })"""
            )
            assert duration == pytest.approx(1024 / 16000, rel=0.05)  # TINY: 1024-sample clips at 16 kHz
            played = audio.evaluate(
                """a => a.play().then(() => new Promise(r => setTimeout(() => r(a.currentTime), 300)))"""
            )
            assert played > 0
        finally:
            browser.close()


def test_the_address_wavegan_ui_prints_opens_the_runs_table_with_the_run(mlflow_server, monkeypatch):
    """MLflow 3 opens an experiment on its (empty) GenAI overview; `wavegan ui` prints the runs table's
    address instead, where the run is listed by name."""
    from playwright.sync_api import sync_playwright

    from wavegan.cli.ui import runs_table_url

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    result = train(compose([*TINY, "tracking.experiment=ui-runs", "tracking.log_model=false", "seed=5"]))
    import mlflow

    run = mlflow.get_run(result.run_id)
    host, port = mlflow_server.removeprefix("http://").split(":")
    url = runs_table_url(host, int(port), run.info.experiment_id)
    assert url.endswith(f"#/experiments/{run.info.experiment_id}/runs")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(url)
            page.get_by_text(run.info.run_name).first.wait_for(timeout=60_000)
        finally:
            browser.close()
