"""Build gilhub's JupyterLab extension, or check that the shipped build matches its source.

    python labextension/build.py          # npm ci if needed, tsc, webpack -> gilhub/labextension
    python labextension/build.py --check  # what CI runs: no Node.js needed
    python labextension/build.py --test   # npm ci if needed, the extension's tests (node --test)

The build is shipped prebuilt inside the Python package (``gilhub/labextension``,
installed by the wheel to ``share/jupyter/labextensions/gilhub-lab``), so installing
gilhub needs no Node.js. To keep the shipped build honest, the build records in
``gilhub/labextension/build-manifest.json`` the sha256 of every source file
(``src/``, ``style/``, ``package.json``, ``package-lock.json``, ``tsconfig.json``)
and of every built file. ``--check`` fails when a source changed since the last build
(rebuild and commit) or when a built file was changed, added or removed by hand.

Works on Windows too (no shell, no POSIX-only calls).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent
OUTPUT_DIR = SOURCE_DIR.parent / "gilhub" / "labextension"
MANIFEST = OUTPUT_DIR / "build-manifest.json"
SOURCE_FILES = ("package.json", "package-lock.json", "tsconfig.json", "install.json")
SOURCE_TREES = ("src", "style")
TEST_DIR = SOURCE_DIR / "test"


def _digest(path: Path) -> str:
    # line endings normalised: a Windows checkout with autocrlf hashes the same
    return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()


def _hashes(root: Path, paths: list[Path]) -> dict[str, str]:
    return {path.relative_to(root).as_posix(): _digest(path) for path in sorted(paths)}


def source_hashes() -> dict[str, str]:
    paths = [SOURCE_DIR / name for name in SOURCE_FILES]
    for tree in SOURCE_TREES:
        paths += [path for path in (SOURCE_DIR / tree).rglob("*") if path.is_file()]
    return _hashes(SOURCE_DIR, paths)


def output_hashes() -> dict[str, str]:
    paths = [p for p in OUTPUT_DIR.rglob("*") if p.is_file() and p != MANIFEST]
    return _hashes(OUTPUT_DIR, paths)


def _run(*command: str) -> None:
    executable = shutil.which(command[0])
    if executable is None:
        sys.exit(f"build: {command[0]} is not installed (Node.js 20 and npm are needed to build)")
    print("build:", " ".join(command), flush=True)
    subprocess.run([executable, *command[1:]], cwd=SOURCE_DIR, check=True)


def _jupyterlab_core() -> str:
    """JupyterLab's own package metadata (its shared modules), from the installed jupyterlab."""
    import jupyterlab

    return str(Path(jupyterlab.__file__).resolve().parent / "staging")


def _install() -> None:
    if not (SOURCE_DIR / "node_modules" / "@jupyterlab" / "builder").is_dir():
        _run("npm", "ci", "--no-audit", "--no-fund")


def test() -> None:
    """Compile the parts under test (``test/tsconfig.json``) and run ``test/*.test.mjs``.

    The citation cases come from ``tests/bibliography/citation_cases.json``, shared
    with the hub's Python tests.
    """
    _install()
    _run("node", "node_modules/typescript/bin/tsc", "-p", "test")
    tests = sorted(str(path.relative_to(SOURCE_DIR)) for path in TEST_DIR.glob("*.test.mjs"))
    _run("node", "--test", *tests)


def build() -> None:
    _install()
    shutil.rmtree(OUTPUT_DIR, ignore_errors=True)
    shutil.rmtree(SOURCE_DIR / "lib", ignore_errors=True)
    (SOURCE_DIR / "tsconfig.tsbuildinfo").unlink(missing_ok=True)
    _run("node", "node_modules/typescript/bin/tsc")
    _run(
        "node",
        "node_modules/@jupyterlab/builder/lib/build-labextension.js",
        "--core-path",
        _jupyterlab_core(),
        ".",
    )
    shutil.copyfile(SOURCE_DIR / "install.json", OUTPUT_DIR / "install.json")
    manifest = {"source": source_hashes(), "output": output_hashes()}
    MANIFEST.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"build: {len(manifest['output'])} files in {OUTPUT_DIR}")


def _differences(kind: str, recorded: dict[str, str], actual: dict[str, str]) -> list[str]:
    return [
        f"{kind} {name}: "
        + ("missing" if name not in actual else "added" if name not in recorded else "changed")
        for name in sorted(set(recorded) | set(actual))
        if recorded.get(name) != actual.get(name)
    ]


def check() -> int:
    if not MANIFEST.is_file():
        print(f"check: {MANIFEST} is missing: run python labextension/build.py", file=sys.stderr)
        return 1
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    problems = _differences("source", manifest["source"], source_hashes())
    problems += _differences("built file", manifest["output"], output_hashes())
    if problems:
        print("check: the shipped JupyterLab extension does not match its source:", file=sys.stderr)
        for problem in problems:
            print("  " + problem, file=sys.stderr)
        print(
            "rebuild with: python labextension/build.py, and commit gilhub/labextension",
            file=sys.stderr,
        )
        return 1
    print(f"check: gilhub/labextension matches labextension/ ({len(manifest['source'])} sources)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="verify, do not build")
    parser.add_argument("--test", action="store_true", help="run the extension's tests")
    arguments = parser.parse_args()
    if arguments.check:
        return check()
    if arguments.test:
        test()
        return 0
    build()
    return check()


if __name__ == "__main__":
    sys.exit(main())
