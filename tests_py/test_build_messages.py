"""A source build on a machine without the -dev packages stops at configure time with
one message that names everything missing and the apt-get line, not a CMake trace.

The missing packages are simulated with CMAKE_DISABLE_FIND_PACKAGE_<name>, so the test
configures the real top-level CMakeLists.txt (configure only: nothing is compiled).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def configure(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake is not installed (scripts/setup.sh installs it)")
    return subprocess.run([cmake, "-S", str(ROOT), "-B", str(tmp_path / "build"), *options],
                          capture_output=True, text=True, timeout=120)


def test_every_missing_package_in_one_message(tmp_path: Path) -> None:
    r = configure(tmp_path, "-DLLMBRIDGE_BUILD_TESTS=ON",
                  "-DCMAKE_DISABLE_FIND_PACKAGE_CURL=ON",
                  "-DCMAKE_DISABLE_FIND_PACKAGE_simdjson=ON",
                  "-DCMAKE_DISABLE_FIND_PACKAGE_Catch2=ON")
    assert r.returncode != 0
    err = r.stderr
    assert err.count("CMake Error") == 1, err  # one message, no trace of find_package
    for name, package in (("libcurl", "libcurl4-openssl-dev"), ("simdjson", "libsimdjson-dev"),
                          ("Catch2", "catch2")):
        assert name in err and f"Debian package {package}" in err, err
    assert "sudo apt-get install -y libcurl4-openssl-dev libsimdjson-dev catch2" in err, err
    assert "scripts/setup.sh" in err


def test_only_what_is_missing_is_named(tmp_path: Path) -> None:
    r = configure(tmp_path, "-DCMAKE_DISABLE_FIND_PACKAGE_simdjson=ON")
    assert r.returncode != 0
    assert "sudo apt-get install -y libsimdjson-dev\n" in r.stderr, r.stderr
    assert "libcurl4-openssl-dev" not in r.stderr
    assert "catch2" not in r.stderr  # the C++ tests were not asked for


def test_a_complete_machine_configures(tmp_path: Path) -> None:
    r = configure(tmp_path, "-DLLMBRIDGE_BUILD_TESTS=ON")
    assert r.returncode == 0, r.stderr
    assert "cannot be built" not in r.stderr
