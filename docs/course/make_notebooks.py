"""Write ``docs/course/NN_<exercise>.ipynb``, one thin notebook per exercise of ``hepml.course``.

Each notebook shows the exercise's lecture notes (the module docstring), runs it with
``hepml.course.run`` (which checks the lecture's numbers), prints the numbers and displays the
plots. The notebooks are stored without outputs; the test-suite executes them
(tests/course/test_notebooks.py) and checks that they match what this script writes.

    python docs/course/make_notebooks.py          # rewrite all notebooks
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

#: Code cells showing each exercise's numbers (after ``results = course.run(...)``).
SHOW = {
    "backprop": ['print(results["table"])'],
    "sigmoid_chain_rule": ['pprint(results["max_deviation_from_sigma_1_minus_sigma"])',
                           'print("sigma\'(0) =", results["sigma_prime_at_0"])'],
    "linear_models": ['pprint(results["regression"])', 'pprint(results["classification"])'],
    "nonlinearity": ['pprint(results["algebra"])',
                     'pprint({k: results[k] for k in ("test_accuracy", "chance_accuracy", '
                     '"max_diff_trained_linear_net_vs_collapsed")})'],
    "tree_growing": ['for row in results["classification_by_depth"]:\n    print(row)',
                     'print(results["piecewise_f_depth3"])'],
    "ensembles": ['print(results["table"])',
                  'print("core vs XGBoost, max |Δp| =", results["max_diff_core_vs_xgboost_proba"])'],
    "overfitting": ['print("best degree:", results["best_degree"])\nfor row in results["polynomial"]:\n    print(row)'],
    "keras_snippets": [
        'for usage, answer in results["keras3_answers"].items():\n    print(f"{usage:<38} -> {answer}")',
        'for name, res in results["snippets"].items():\n    print(name, res["max_abs_diff_predictions"])',
    ],
    "particle_id": ['print(results["split_sizes"], results["class_counts"])', 'print(results["table"])'],
}

#: Extra cells after the numbers: for the Keras snippets, each slide's code beside its rewrite.
EXTRA = {
    "keras_snippets": [
        "import inspect\nfrom hepml.course import keras_snippets as ks\n"
        "rewrites = {\"keras1\": (ks.create_model, ks.snippet_keras1), \"keras2\": (ks.three_class_model, "
        "ks.snippet_keras2),\n            \"keras3\": (ks.baseline_model, ks.snippet_keras3)}\n"
        "for slide, (build, train) in rewrites.items():\n"
        '    print(f"===== slide {slide}: the original =====")\n'
        "    print(ks.SLIDE_CODE[slide])\n"
        '    print("----- Keras 3, then trained beside PyTorch and the core -----")\n'
        "    print(inspect.getsource(build))\n"
        "    print(inspect.getsource(train))\n"
        "    for old, new, why in ks.CHANGES[slide]:\n"
        '        print(f"  {old}\\n    -> {new}\\n       ({why})")\n'
        "    print()",
    ],
}


def exercises() -> dict:
    """``{name: (module path, title)}`` read from ``hepml/course/__init__.py`` without importing hepml."""
    tree = ast.parse((REPO / "hepml" / "course" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "EXERCISES":
            return ast.literal_eval(node.value)
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "EXERCISES" for t in node.targets):
            return ast.literal_eval(node.value)
    raise RuntimeError("EXERCISES not found in hepml/course/__init__.py")


def docstring(module_path: str) -> str:
    """The exercise module's docstring, read from its file (no import: Keras loads slowly)."""
    path = REPO / Path(*module_path.split(".")).with_suffix(".py")
    return ast.get_docstring(ast.parse(path.read_text())) or ""


def notebook_name(index: int, name: str) -> str:
    return f"{index:02d}_{name}.ipynb"


def build_notebook(index: int, name: str, module_path: str, title: str):
    """The notebook of one exercise (no outputs)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    head, _, body = docstring(module_path).partition("\n\n")  # first paragraph: "Exercise N — ..."
    cells = [
        nbformat.v4.new_markdown_cell(f"# {' '.join(head.split())}\n\n{body}\n\n"
                                      f"Command line: `hepml course run {name}` ({title.lower()}). "
                                      "Outputs go to `course_output/` beside this notebook."),
        nbformat.v4.new_code_cell("from pathlib import Path\nfrom pprint import pprint\n\n"
                                  "from IPython.display import Image, display\n\nimport hepml.course as course"),
        nbformat.v4.new_code_cell(f'results = course.run("{name}", Path("course_output"))\n'
                                  'print(f"{results[\'name\']}: reproduced in {results[\'seconds\']:.1f} s")'),
    ]
    cells += [nbformat.v4.new_code_cell(src) for src in SHOW[name]]
    cells += [nbformat.v4.new_code_cell(src) for src in EXTRA.get(name, [])]
    cells.append(nbformat.v4.new_code_cell('for png in results["plots"]:\n    display(Image(filename=png))'))
    nb.cells = cells
    for i, cell in enumerate(nb.cells):  # stable ids, so regenerating gives identical files
        cell.id = f"{name}-{i}"
    return nb


def all_notebooks() -> dict:
    """``{file name: notebook}`` for every exercise, in lecture order."""
    return {notebook_name(i, name): build_notebook(i, name, module, title)
            for i, (name, (module, title)) in enumerate(exercises().items(), start=1)}


def main() -> None:
    spec = importlib.util.spec_from_file_location("hepml_atomic", REPO / "hepml" / "atomic.py")
    atomic = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(atomic)
    for filename, nb in all_notebooks().items():
        atomic.write_text(HERE / filename, nbformat.writes(nb) + "\n")
        print(f"wrote {HERE / filename}")


if __name__ == "__main__":
    main()
