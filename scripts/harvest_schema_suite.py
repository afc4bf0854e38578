#!/usr/bin/env python3
"""Harvest the official JSON-Schema-Test-Suite (draft 2020-12) as test data.

What it does: downloads the sdist of Python's `jsonschema` (which ships the suite under
json/tests/ and its MIT licence under json/LICENSE) with pip, copies the draft 2020-12
test files -- every top-level keyword file and the optional files listed in OPTIONAL --
byte for byte into tests_py/data/json_schema_suite/, with the licence and a README
naming the source and version. Nothing of jsonschema is imported or run: the files are
data (schemas, instances, expected verdicts). tests_py/test_schema_suite.py runs them.

Rerun (downloads the sdist with pip into a temporary directory):

    python3 scripts/harvest_schema_suite.py

or with the sdist (or its unpacked directory) already at hand:

    python3 scripts/harvest_schema_suite.py /tmp/jsonschema-4.26.0.tar.gz
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests_py" / "data" / "json_schema_suite"
VERSION = "4.26.0"
SPEC = f"jsonschema=={VERSION}"

# The optional files worth running: number, regex and identifier behaviour the
# validator claims. format/ (format as an assertion) is left out: format is an
# annotation here.
OPTIONAL = [
    "anchor.json",
    "bignum.json",
    "cross-draft.json",
    "dependencies-compatibility.json",
    "ecmascript-regex.json",
    "float-overflow.json",
    "id.json",
    "no-schema.json",
    "non-bmp-regex.json",
    "refOfUnknownKeyword.json",
    "unknownKeyword.json",
]


def download(tmp: Path) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-binary",
        ":all:",
        "--no-deps",
        "--quiet",
        "-d",
        str(tmp),
        SPEC,
    ]
    subprocess.run(cmd, check=True)
    found = sorted(tmp.glob("jsonschema-*.tar.gz"))
    if not found:
        raise SystemExit(f"pip did not download an sdist of {SPEC}")
    return found[0]


def unpack(source: Path, tmp: Path) -> Path:
    if source.is_dir():
        return source
    with tarfile.open(source) as tar:
        for member in tar.getmembers():  # no absolute paths or '..' in a member name
            if member.name.startswith("/") or ".." in Path(member.name).parts:
                raise SystemExit(f"refusing suspicious member {member.name!r}")
        tar.extractall(tmp)
    dirs = [p for p in tmp.iterdir() if p.is_dir() and p.name.startswith("jsonschema-")]
    if not dirs:
        raise SystemExit(f"{source} does not unpack to a jsonschema-* directory")
    return dirs[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sdist", nargs="?", type=Path, help="jsonschema sdist or its directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        root = unpack(args.sdist or download(tmp), tmp)
        suite = root / "json" / "tests" / "draft2020-12"
        if not suite.is_dir():
            raise SystemExit(f"{root} has no json/tests/draft2020-12")
        if OUT.exists():
            shutil.rmtree(OUT)
        (OUT / "optional").mkdir(parents=True)
        files = sorted(p.name for p in suite.glob("*.json"))
        for name in files:
            shutil.copyfile(suite / name, OUT / name)
        for name in OPTIONAL:
            shutil.copyfile(suite / "optional" / name, OUT / "optional" / name)
        shutil.copyfile(root / "json" / "LICENSE", OUT / "LICENSE")
        version = root.name[len("jsonschema-") :]
        (OUT / "README.md").write_text(
            "# JSON-Schema-Test-Suite, draft 2020-12\n\n"
            "The official JSON Schema test suite (json-schema-org/JSON-Schema-Test-Suite), "
            f"as shipped in the sdist of Python's `jsonschema` {version} on PyPI under "
            "`json/tests/draft2020-12/`. The files are copied unchanged: every top-level "
            "keyword file and, under `optional/`, "
            + ", ".join(f"`{n}`" for n in OPTIONAL)
            + ".\n\nLicence: MIT, Copyright (c) 2012 Julian Berman (see `LICENSE` here).\n\n"
            "Regenerate with `python3 scripts/harvest_schema_suite.py`; "
            "`tests_py/test_schema_suite.py` runs every case against `llmbridge.validate`.\n",
            encoding="utf-8",
        )
        print(f"{len(files)} keyword files and {len(OPTIONAL)} optional files -> {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
