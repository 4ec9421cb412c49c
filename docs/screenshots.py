"""Screenshots of the MLflow UI for the README, taken in a real headless browser with a fresh
profile, from a store a sweep wrote. Not part of the package or the tests (it needs Chromium and
Playwright: ``pip install playwright``; Debian's ``chromium``):

    python -m pipeline -m hydra.sweeper.register_model=digits-mlp     # writes outputs/mlflow.db
    python docs/screenshots.py outputs/mlflow.db docs/img

It opens the link the sweep printed and checks that the UI shows the training runs (not the GenAI
overview), that the Dataset column is filled and that the sweep's run lists its logged model."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def main(db: Path, out: Path) -> None:
    from mlflow.tracking import MlflowClient
    from playwright.sync_api import sync_playwright

    uri = f"sqlite:///{db.resolve()}"
    client = MlflowClient(uri)
    (experiment,) = [e for e in client.search_experiments() if e.name != "Default"]
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags][:1]
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host",
                               "127.0.0.1", "--port", str(port)], start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(base)
        out.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_context(viewport={"width": 1600, "height": 900}).new_page()  # a fresh profile
            page.goto(f"{base}/#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning")
            page.get_by_text("digits", exact=False).first.wait_for(timeout=60_000)
            page.wait_for_timeout(2000)
            text = page.inner_text("body")
            assert "Dataset" in text and "digits" in text, "the runs table shows no Dataset column"
            assert "Model training" in text and "Evaluations" not in text
            _close_assistant(page)
            page.locator('button[data-component-id$="runnamecellrenderer.tsx_46"]').first.click()  # the sweep's trials
            page.wait_for_timeout(2000)
            page.screenshot(path=str(out / "mlflow-runs.png"))
            page.goto(f"{base}/#/experiments/{experiment.experiment_id}/runs/{parent.info.run_id}"
                      "?workflowType=machine_learning")
            page.get_by_text("Logged models", exact=False).first.wait_for(timeout=60_000)
            page.wait_for_timeout(2000)
            text = page.inner_text("body")
            assert "Evaluations" not in text, "the run page opened on the GenAI view"
            after = text.split("Logged models", 1)[1].strip().splitlines()
            assert after and after[0].strip() == "(1)", "the sweep's run lists no logged model"
            _close_assistant(page)
            page.get_by_text("Logged models", exact=False).last.scroll_into_view_if_needed()
            page.wait_for_timeout(1000)
            page.screenshot(path=str(out / "mlflow-sweep-run.png"))
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _close_assistant(page: object) -> None:
    """MLflow 3.17 opens an assistant panel beside the table; close it if it is there."""
    close = page.get_by_role("button", name="Close")  # type: ignore[attr-defined]
    if close.count():
        close.first.click()
        page.wait_for_timeout(500)  # type: ignore[attr-defined]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, timeout_s: float = 60.0) -> None:
    import urllib.request

    end = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            return
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.5)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
