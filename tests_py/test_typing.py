"""Type checkers in strict mode accept the package, examples/ and the docs' Python blocks.

mypy (``--strict``, for Python 3.9), pyright and basedpyright (``typeCheckingMode =
"strict"``: one checker, whose two builds infer a few types differently) run as
subprocesses with the settings of pyproject.toml ([tool.mypy], [tool.pyright]) on
python/llmbridge (llmbridge.testing included), examples/, and every ```python block of
README.md and docs/*.md, each written as a module the way tests_py/doc_blocks.py
describes (docs/typing.md explains the rules). A failure shows the checker's report, with
the lines of doc blocks given as markdown lines.

mypy keeps its cache in .mypy_cache at the top of the checkout, so a second run checks
only what changed.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from doc_blocks import ROOT, DocBlock, python_blocks

PYPROJECT = ROOT / "pyproject.toml"
CHECKED = ["python/llmbridge", "examples"]
# A snippet shows values it does not use: these lint rules say nothing about its types.
_SNIPPET_LINT_RULES = ("reportUnusedVariable", "reportUnusedFunction", "reportUnusedImport",
                       "reportUnusedExpression", "reportUnusedClass", "reportUnusedCoroutine")


DocModules = tuple[Path, dict[str, DocBlock]]


@pytest.fixture(scope="module")
def doc_modules(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocModules]:
    """The checked doc blocks as modules in a temporary directory, by module file name."""
    folder = tmp_path_factory.mktemp("doc_blocks")
    blocks: dict[str, DocBlock] = {}
    for block in python_blocks():
        if block.skip is not None:
            continue
        source, _ = block.module()
        name = block.module_name + ".py"
        (folder / name).write_text(source, encoding="utf-8")
        blocks[name] = block
    assert blocks, "no Python blocks found in README.md and docs/*.md"
    yield folder, blocks


def _in_markdown(report: str, folder: Path, blocks: dict[str, DocBlock]) -> str:
    """The report with each doc module's path:line given as the markdown's path:line."""
    def where(m: re.Match[str]) -> str:
        block = blocks.get(m.group("file"))
        if block is None:
            return m.group(0)
        if m.group("line") is None:
            return f"{block.doc} (block {block.name})"
        line = block.markdown_line(int(m.group("line")))
        column = f":{m.group('col')}" if m.group("col") else ""
        return f"{block.doc}:{line}{column} (block {block.name})"

    pattern = re.compile(rf"(?:{re.escape(str(folder))}/)?(?P<file>docblock_\w+\.py)"
                         r"(?::(?P<line>\d+)(?::(?P<col>\d+))?)?")
    return pattern.sub(where, report)


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, encoding="utf-8",
                          stdin=subprocess.DEVNULL, timeout=600)


def test_mypy_strict(doc_modules: DocModules) -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.fail("mypy is not installed: pip install '.[test,typecheck]' (scripts/setup.sh does)")
    import mypy.version

    major = int(mypy.version.__version__.split(".")[0])
    assert major < 2, (f"mypy {mypy.version.__version__} cannot check for Python 3.9 (the "
                       "oldest llmbridge supports); the typecheck extra pins mypy<2")
    folder, blocks = doc_modules
    proc = _run([sys.executable, "-m", "mypy", "--config-file", str(PYPROJECT),
                 "--cache-dir", str(ROOT / ".mypy_cache"), "--no-color-output",
                 "--no-error-summary", *CHECKED, *sorted(str(folder / n) for n in blocks)])
    if proc.returncode != 0:
        pytest.fail(f"mypy --strict (mypy {mypy.version.__version__}) found problems "
                    "(python/llmbridge, examples/, doc blocks as markdown lines):\n"
                    + _in_markdown(proc.stdout + proc.stderr, folder, blocks), pytrace=False)


@pytest.mark.parametrize("name", ["pyright", "basedpyright"])
def test_pyright_strict(name: str, doc_modules: DocModules) -> None:
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed (the typecheck extra installs it; scripts/setup.sh asks for it)")
    if name == "pyright" and shutil.which("node") is None:
        # Its wheel would fetch Node.js from the network; basedpyright brings its own.
        pytest.skip("pyright needs Node.js on PATH (apt-get install nodejs)")
    folder, blocks = doc_modules
    # One run: pyproject.toml's settings for everything, and for the doc blocks (their own
    # execution environment) the lint rules that do not apply to snippets turned off.
    config = {
        "extends": str(PYPROJECT),
        "include": [*(str(ROOT / path) for path in CHECKED), str(folder)],
        "executionEnvironments": [{
            "root": str(folder), "extraPaths": [str(ROOT / "python")],
            **{rule: False for rule in _SNIPPET_LINT_RULES},
        }],
    }
    config_file = folder / f"{name}config.json"
    config_file.write_text(json.dumps(config), encoding="utf-8")
    proc = _run([sys.executable, "-m", name, "--project", str(config_file)])
    out = proc.stdout + proc.stderr
    if proc.returncode != 0 or not re.search(r"^0 errors, 0 warnings, 0 (notes|informations)", out,
                                             re.M):
        pytest.fail(f"{name} (strict) found problems in python/llmbridge, examples/ or the "
                    "doc blocks (as markdown lines):\n" + _in_markdown(out, folder, blocks),
                    pytrace=False)


def test_the_report_points_into_the_markdown(doc_modules: DocModules) -> None:
    """A checker's line in a doc module reads as the markdown file and line it came from."""
    folder, blocks = doc_modules
    name, block = next((n, b) for n, b in blocks.items() if not b.is_session)
    _, first = block.module()
    report = f"{folder}/{name}:{first + 1}: error: something  [misc]"
    shown = _in_markdown(report, folder, blocks)
    assert shown.startswith(f"{block.doc}:{block.line + 1} (block {block.name}): error:")
    lines = (ROOT / block.doc).read_text(encoding="utf-8").splitlines()
    assert lines[block.line] == block.code().splitlines()[1]
