"""The bundle's licences and bill of materials beyond what pip knows, and the vulnerability check's verdict.

    python installer/sbom.py supplement --bundle DIST --root CHECKOUT --out SBOM_DIR
        copies the licence texts the bundle must carry into DIST/licences/ (CPython's PSF licence; Qt's and
        PySide6's LGPL-3 with the GPL-3 it builds on; the sample images' attribution) and writes
        SBOM_DIR/supplementary.json: CPython, Qt, the native libraries in the bundle, the model weights by sha256,
        the CC BY 4.0 sample images.
    python installer/sbom.py prune SBOM.json
        removes the build tools (PyInstaller and its helpers, pip, setuptools) from cyclonedx-py's environment SBOM.
    python installer/sbom.py audit PIP_AUDIT.json PIP_AUDIT.log EXIT_STATUS strict|report
        prints the verdict of pip-audit on the runtime lock; exits 1 in strict mode unless every package was checked
        and none has a known vulnerability (unreachable service, or packages PyPI does not know: not clean).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import sys
import sysconfig
from pathlib import Path

BUILD_TOOLS = frozenset({"pyinstaller", "pyinstaller-hooks-contrib", "altgraph", "pip", "setuptools", "wheel"})
LGPL_TEXTS = (Path("/usr/share/common-licenses/LGPL-3"), Path("/usr/share/common-licenses/GPL-3"))
QT_NOTICE = """Qt 6 and PySide6 (Qt for Python) are used under the GNU Lesser General Public License v3 (LGPL-3.0, in
LGPL-3.txt, which builds on GPL-3.txt). They are shipped unmodified as shared libraries in _internal/PySide6/ and
may be replaced by a compatible build of the same Qt/PySide6 version. Sources: https://download.qt.io/official_releases/
and https://download.qt.io/official_releases/QtForPython/ (PySide6 {version}).
"""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _internal(bundle: Path) -> Path:
    inner = bundle / "_internal"
    return inner if inner.is_dir() else bundle


def copy_licences(bundle: Path, root: Path, pyside_version: str) -> Path:
    """DIST/licences/: the texts a redistributor must ship beside the program."""
    folder = bundle / "licences"
    folder.mkdir(exist_ok=True)
    python_licence = Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt"
    if python_licence.is_file():
        shutil.copy(python_licence, folder / "Python-PSF-LICENSE.txt")
    for text in LGPL_TEXTS:
        if not text.is_file():
            raise SystemExit(f"{text} is missing: install Debian's base-files (the Qt LGPL-3 text ships from it)")
        shutil.copy(text, folder / f"{text.name}.txt")
    (folder / "Qt-PySide6-NOTICE.txt").write_text(QT_NOTICE.format(version=pyside_version), encoding="utf-8")
    shutil.copy(root / "resources" / "samples" / "README.md", folder / "sample-images-CC-BY-4.0.md")
    return folder


def native_libraries(bundle: Path) -> list[dict[str, str]]:
    inner = _internal(bundle)
    found = []
    for path in sorted(inner.rglob("*")):
        if path.is_file() and not path.is_symlink() and (".so" in path.name or path.suffix in {".dll", ".dylib"}):
            found.append({"path": path.relative_to(bundle).as_posix(), "sha256": sha256(path)})
    return found


def supplement(bundle: Path, root: Path, out: Path) -> dict[str, object]:
    try:
        from importlib.metadata import version

        pyside = version("PySide6-Essentials")
    except Exception:  # the tests build a fixture bundle outside a venv with PySide6
        pyside = "unknown"
    copy_licences(bundle, root, pyside)
    models = root / "resources" / "models"
    samples = root / "resources" / "samples"
    document: dict[str, object] = {
        "about": "What the CycloneDX environment SBOM (environment.cdx.json) does not list",
        "cpython": {"version": platform.python_version(), "licence": "PSF-2.0",
                    "text": "licences/Python-PSF-LICENSE.txt", "implementation": sys.implementation.name},
        "qt": {"component": "Qt 6 via PySide6-Essentials", "version": pyside, "licence": "LGPL-3.0-only",
               "texts": ["licences/LGPL-3.txt", "licences/GPL-3.txt", "licences/Qt-PySide6-NOTICE.txt"]},
        "native_libraries": native_libraries(bundle),
        "model_weights": [{"path": path.relative_to(root).as_posix(), "sha256": sha256(path)}
                          for path in sorted(models.rglob("*")) if path.is_file()],
        "sample_images": {"licence": "CC-BY-4.0", "attribution": "licences/sample-images-CC-BY-4.0.md",
                          "files": [{"path": path.relative_to(root).as_posix(), "sha256": sha256(path)}
                                    for path in sorted(samples.glob("*")) if path.suffix.lower() in {".jpeg", ".jpg"}]},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "supplementary.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return document


def prune(sbom_path: Path) -> int:
    sbom = json.loads(sbom_path.read_text(encoding="utf-8"))
    dropped = {c["bom-ref"] for c in sbom.get("components", []) if c.get("name", "").lower() in BUILD_TOOLS}
    sbom["components"] = [c for c in sbom.get("components", []) if c["bom-ref"] not in dropped]
    sbom["dependencies"] = [
        {**d, "dependsOn": [ref for ref in d.get("dependsOn", []) if ref not in dropped]}
        for d in sbom.get("dependencies", []) if d["ref"] not in dropped
    ]
    sbom_path.write_text(json.dumps(sbom, indent=2) + "\n", encoding="utf-8")
    return len(dropped)


def audit_verdict(report: Path, log: Path, status: int) -> tuple[str, list[str]]:
    """("clean" | "vulnerable" | "incomplete" | "not run", lines to print). Incomplete: some packages could not be
    looked up (e.g. a version PyPI does not know, a wheel installed from a file); "clean" only when all were."""
    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    try:
        dependencies = json.loads(report.read_text(encoding="utf-8"))["dependencies"]
    except (OSError, ValueError, KeyError, TypeError):
        reason = text.strip().splitlines()[-1] if text.strip() else f"pip-audit exited with {status}"
        return "not run", [f"VULNERABILITY CHECK NOT RUN: pip-audit could not check the runtime lock ({reason})."]
    found = [f"{d['name']} {d['version']}: {v['id']} (fixed in {', '.join(v.get('fix_versions') or ['-'])})"
             for d in dependencies for v in d.get("vulns", [])]
    skipped = [f"{d['name']} {d.get('version', '')}: {d.get('skip_reason', 'skipped')}"
               for d in dependencies if "skip_reason" in d]
    lines = [f"pip-audit: {len(dependencies)} packages in the runtime lock, looked up in PyPI's advisories: "
             f"{len(found)} known vulnerabilities"] + [f"  VULNERABLE {line}" for line in found]
    lines += [f"  not checked: {line}" for line in skipped]
    if skipped:
        lines.insert(0, f"VULNERABILITY CHECK INCOMPLETE: {len(skipped)} of {len(dependencies)} packages could not be "
                        "checked (listed below as 'not checked')")
    return ("vulnerable" if found else "incomplete" if skipped else "clean"), lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    sup = commands.add_parser("supplement")
    sup.add_argument("--bundle", type=Path, required=True)
    sup.add_argument("--root", type=Path, required=True)
    sup.add_argument("--out", type=Path, required=True)
    pr = commands.add_parser("prune")
    pr.add_argument("sbom", type=Path)
    au = commands.add_parser("audit")
    au.add_argument("report", type=Path)
    au.add_argument("log", type=Path)
    au.add_argument("status", type=int)
    au.add_argument("mode", choices=("strict", "report"))
    args = parser.parse_args()
    if args.command == "supplement":
        document = supplement(args.bundle, args.root, args.out)
        print(f"supplementary SBOM: {len(document['native_libraries'])} native libraries")  # type: ignore[arg-type]
        return 0
    if args.command == "prune":
        print(f"SBOM: {prune(args.sbom)} build tools removed")
        return 0
    verdict, lines = audit_verdict(args.report, args.log, args.status)
    print("\n".join([*lines, f"verdict: {verdict} (mode {args.mode})"]))
    return 1 if args.mode == "strict" and verdict != "clean" else 0


if __name__ == "__main__":
    raise SystemExit(main())
