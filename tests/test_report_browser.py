"""The comparison report opens in a real browser: headless Chromium loads every image and the tables.

Chromium comes from the system packages (`make test` installs it when missing). The test injects a
tiny checker script into a copy of the report, lets Chromium run it, and reads the DOM back.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
import yaml

from hepml.compare import compare

from .conftest import write_root

CHECK = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  const tables = document.querySelectorAll('table.metrics').length;
  const d = document.createElement('div'); d.id = 'hepml-check';
  d.textContent = `images ${ok}/${imgs.length} tables ${tables}`;
  document.body.appendChild(d);
});
</script>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium is not installed; `make test` installs it (apt-get install chromium)")


def run_chromium(*args, timeout=120):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic"]
    return subprocess.run([chromium(), *flags, *args], capture_output=True, text=True, timeout=timeout)


def test_report_renders_in_chromium(tmp_path):
    rng = np.random.default_rng(2)
    n = 1500
    y = rng.integers(0, 2, n).astype(np.int32)
    x = rng.normal(size=(n, 2)) + y[:, None]
    write_root(tmp_path / "t.root", {"a": x[:, 0], "b": x[:, 1], "cls": y})
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"name": "t", "files": ["t.root"], "label": {"branch": "cls", "classes": {"s": 1, "b": 0}}, "features": ["a", "b"]}))
    out = tmp_path / "report"
    compare(tmp_path / "t.yaml", frameworks=["core"], models=["mlp"], out=out, overrides={"mlp": {"train": {"epochs": 1}}})
    page = out / "report.html"
    checked = tmp_path / "checked.html"
    checked.write_text(page.read_text().replace("</body>", CHECK + "</body>"))
    res = run_chromium("--virtual-time-budget=10000", "--dump-dom", checked.as_uri())
    m = re.search(r'id="hepml-check">images (\d+)/(\d+) tables (\d+)<', res.stdout)
    assert m, f"checker did not run: {res.stderr[-500:]}"
    ok, total, tables = map(int, m.groups())
    assert total >= 6 and ok == total and tables >= 3
    shot = tmp_path / "report.png"
    run_chromium(f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri())
    assert shot.exists() and shot.stat().st_size > 20_000
