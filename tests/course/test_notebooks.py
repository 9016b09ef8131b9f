"""The course notebooks (docs/course/*.ipynb) execute, on this interpreter, so they cannot rot.

Each notebook runs in a fresh ``python3`` kernel (nbclient) with its own temporary working
folder, three at a time; the executed outputs stay in memory and are never written back into
the repository. A first cell, added only here, proves that the kernel is this test's
interpreter (same ``sys.prefix``).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")  # the python3 kernel of this interpreter

REPO = Path(__file__).resolve().parents[2]
COURSE_DOCS = REPO / "docs" / "course"
NOTEBOOKS = sorted(COURSE_DOCS.glob("*.ipynb"))
CELL_TIMEOUT = 400  # seconds per cell; a whole exercise runs in one cell


def _make_notebooks():
    spec = importlib.util.spec_from_file_location("make_notebooks", COURSE_DOCS / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_stored_notebook_per_exercise_matching_the_generator():
    from hepml.course import EXERCISES

    expected = _make_notebooks().all_notebooks()
    assert [p.name for p in NOTEBOOKS] == list(expected)
    assert len(expected) == len(EXERCISES)
    for path in NOTEBOOKS:
        stored = nbformat.read(path, as_version=4)
        cells = lambda nb: [(c.cell_type, c.source) for c in nb.cells]  # noqa: E731
        assert cells(stored) == cells(expected[path.name]), f"{path.name} is stale: run docs/course/make_notebooks.py"
        code = [c for c in stored.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{path.name} has stored outputs"


async def _execute_all(paths, workdir: Path, concurrency: int) -> dict:
    """Execute the notebooks concurrently (one kernel each, at most ``concurrency`` at a time):
    kernels mostly wait on imports, so overlapping them shortens the wall time on few cores."""
    import asyncio

    gate = asyncio.Semaphore(concurrency)

    async def one(path):
        nb = nbformat.read(path, as_version=4)
        nb.cells.insert(0, nbformat.v4.new_code_cell("import sys; print(sys.prefix)"))
        folder = workdir / path.stem
        folder.mkdir()
        client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT,
                                         resources={"metadata": {"path": str(folder)}})
        async with gate:
            try:
                await client.async_execute()
            except Exception as exc:  # CellExecutionError carries the cell's traceback
                return path.name, (nb, folder, exc)
        return path.name, (nb, folder, None)

    return dict(await asyncio.gather(*(one(p) for p in paths)))


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """{notebook file name: (executed notebook, its working folder, exception or None)}."""
    import asyncio

    before = {p: p.read_bytes() for p in NOTEBOOKS}
    runs = asyncio.run(_execute_all(NOTEBOOKS, tmp_path_factory.mktemp("notebooks"), concurrency=3))
    assert {p: p.read_bytes() for p in NOTEBOOKS} == before, "executing must not write into the repository"
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, executed):
    nb, folder, error = executed[path.name]
    assert error is None, f"{path.name} failed: {error}"
    assert nb.cells[0].outputs[0]["text"].strip() == sys.prefix, "the kernel is not this test's interpreter"
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    name = path.stem.split("_", 1)[1]
    results = json.loads((folder / "course_output" / name / "results.json").read_text())
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(images) == len(results["plots"]) >= 1
    assert any(f"{name}: reproduced in" in o.get("text", "") for o in outputs)
