"""Helpers for scripts/wheels.sh and scripts/test_wheels.sh (standard library only, except
`check`, which reads the manylinux policy that auditwheel ships).

    wheel_tools.py sync SDIST DEST
        Makes DEST hold exactly the files of the sdist SDIST (a .tar.gz), rewriting only the
        files whose bytes changed, so that a build directory kept in DEST/build rebuilds only
        what changed (ninja compares mtimes; the sdist's own mtimes are not to be trusted).
    wheel_tools.py check SITE_PACKAGES PLATFORM_TAG
        Runs ldd on the installed extension and on every library bundled beside it, and fails
        when anything resolves outside the wheel other than a library on the manylinux
        allow-list of PLATFORM_TAG (e.g. manylinux_2_34_x86_64).
    wheel_tools.py bundled WHEEL [DOC]
        Prints the libraries bundled in a repaired wheel (llmbridge.libs/) and their sizes,
        auditwheel's hash taken out of the names (libcurl-1a2b3c4d.so.4.8.0 -> libcurl.so.4.8.0);
        with DOC (docs/install.md), fails unless DOC names exactly those libraries.
"""

from __future__ import annotations

import filecmp
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

# The loader and the kernel's vDSO are part of every process, not libraries a wheel ships.
ALWAYS_PRESENT = re.compile(r"^(linux-vdso\.so\.1|linux-gate\.so\.1|/?.*ld-linux[-\w.]*\.so\.\d)$")
LDD_LINE = re.compile(r"^\s*(\S+)(?:\s+=>\s+(\S+|not found))?(?:\s+\(0x[0-9a-f]+\))?\s*$")
# auditwheel's rename of a bundled library: a dash and 8 hex digits, then a dot
# (libcurl-02fbea31.so.4.8.0, libldap-2-062bb940.5.so.0).
HASH_SUFFIX = re.compile(r"-[0-9a-f]{8}(?=\.)")
# How docs/install.md names a bundled library: the first cell of a table row, | `libcurl.so.4` |
DOC_LIBRARY = re.compile(r"^\| `(lib[\w+.-]+?)\.so(?:\.\d+)*` \|", re.MULTILINE)


def sync(sdist: Path, dest: Path) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="llmbridge-sdist-") as tmp:
        with tarfile.open(sdist) as tar:
            if sys.version_info >= (3, 12):
                tar.extractall(tmp, filter="data")
            else:
                tar.extractall(tmp)  # our own sdist, just built
        (root,) = Path(tmp).iterdir()  # llmbridge-<version>/
        wanted = {p.relative_to(root) for p in root.rglob("*") if not p.is_dir()}
        changed = 0
        for rel in sorted(wanted):
            src, dst = root / rel, dest / rel
            if dst.is_file() and filecmp.cmp(src, dst, shallow=False):
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)  # a fresh mtime: ninja rebuilds what depends on it
            shutil.copymode(src, dst)
            changed += 1
        # Files the sdist no longer has; build/ holds the per-Python build directories.
        for path in sorted(dest.rglob("*"), reverse=True):
            rel = path.relative_to(dest)
            if rel.parts[0] == "build" or rel in wanted:
                continue
            if path.is_dir():
                if not any(path.iterdir()):
                    path.rmdir()
            else:
                path.unlink()
                changed += 1
    print(f"wheels: {changed} source file(s) changed since the last build", file=sys.stderr)
    return 0


def allowed_libraries(platform_tag: str) -> set[str]:
    import auditwheel  # the tools venv has it; the policy file is auditwheel's own

    policy_file = Path(auditwheel.__file__).parent / "policy" / "manylinux-policy.json"
    name = platform_tag.removesuffix("_x86_64")  # wheels.sh builds for x86_64 only
    for policy in json.loads(policy_file.read_text(encoding="utf-8")):
        if policy["name"] == name or name in policy.get("aliases", []):
            return set(policy["lib_whitelist"])
    raise SystemExit(f"check: no manylinux policy named {name!r} in {policy_file}")


def ldd(path: Path) -> list[tuple[str, str | None]]:
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=True).stdout
    deps = []
    for line in out.splitlines():
        m = LDD_LINE.match(line)
        if not m:
            raise SystemExit(f"check: cannot read ldd's line {line!r} for {path}")
        deps.append((m.group(1), m.group(2)))
    return deps


def check(site_packages: Path, platform_tag: str) -> int:
    allowed = allowed_libraries(platform_tag)
    (extension,) = (site_packages / "llmbridge").glob("_native*.so")
    libs_dir = site_packages / "llmbridge.libs"
    bundled_libs = sorted(libs_dir.glob("*.so*"))
    if not bundled_libs:
        raise SystemExit(f"check: {libs_dir} holds no bundled library: the wheel was not repaired")
    problems = []
    seen: dict[str, str] = {}
    for binary in [extension, *bundled_libs]:
        for soname, resolved in ldd(binary):
            if ALWAYS_PRESENT.match(soname):
                continue
            if resolved is None or resolved == "not found":
                problems.append(f"{binary.name}: {soname} is not found")
                continue
            real = Path(resolved).resolve()
            if real.parent == libs_dir.resolve():
                seen[soname] = "bundled"
            elif soname in allowed:
                seen[soname] = f"system ({real})"
            else:
                problems.append(f"{binary.name}: {soname} loads from the system ({real}) and is "
                                f"not on the {platform_tag} allow-list")
    for soname in sorted(seen):
        print(f"  {soname:34} {seen[soname]}")
    if problems:
        print("check: FAILED\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    n_system = sum(1 for where in seen.values() if where != "bundled")
    print(f"check: {extension.name}: {len(bundled_libs)} bundled libraries, {n_system} from the "
          f"system, all on the {platform_tag} allow-list")
    return 0


def library_base(file_name: str) -> str:
    """libcurl-02fbea31.so.4.8.0 -> libcurl, libldap-2-062bb940.5.so.0.1.8 -> libldap-2.5."""
    return HASH_SUFFIX.sub("", file_name, count=1).split(".so", 1)[0]


def bundled(wheel: Path, doc: Path | None) -> int:
    with zipfile.ZipFile(wheel) as zf:
        libs = {Path(i.filename).name: i.file_size for i in zf.infolist()
                if i.filename.startswith("llmbridge.libs/") and not i.is_dir()}
    if doc is None:
        for name in sorted(libs):
            print(f"{HASH_SUFFIX.sub('', name, count=1):34} {libs[name] // 1024:6} KiB")
        return 0
    in_wheel = {library_base(name) for name in libs}
    in_doc = set(DOC_LIBRARY.findall(doc.read_text(encoding="utf-8")))
    if in_wheel == in_doc:
        print(f"bundled: the {len(in_wheel)} libraries in {wheel.name} are the ones {doc} lists")
        return 0
    print(f"bundled: {doc} is out of date for {wheel.name}:\n"
          f"  bundled but not listed: {sorted(in_wheel - in_doc)}\n"
          f"  listed but not bundled: {sorted(in_doc - in_wheel)}", file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "sync":
        return sync(Path(argv[1]), Path(argv[2]))
    if len(argv) == 3 and argv[0] == "check":
        return check(Path(argv[1]), argv[2])
    if len(argv) in (2, 3) and argv[0] == "bundled":
        return bundled(Path(argv[1]), Path(argv[2]) if len(argv) == 3 else None)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
