"""Smoke test of the installed app (``make installer-check``): extract the .deb into a scratch root and run the
installed PneumoDesk from it, read-only, with a throw-away data folder and no network; compare it with the
development install (the interpreter running this script, with the checkout on its path).

    python installer/check_install.py --deb build/installer/pneumodesk_X_amd64.deb [--repeat N] [--json OUT]

Prints one JSON object of figures and failures; exits 1 when anything failed. Checks: ``--version``; ``predict`` on
the bundled samples plus a JPEG-compressed DICOM made here, probabilities equal to the development install's within
``--tolerance``; ``--heatmap-dir`` writes one heat map per image; ``gui --screenshots`` renders the same pages as the
development install, none blank; the bundle holds nothing of installer/bundle_rules.py's forbidden list (tests, dev
tools, nvidia, triton, OpenCV, torchvision), also inside the executables' module archive; size budgets; every system
library the bundle loads belongs to a package the .deb depends on; the highest glibc symbol version it needs.
"""

from __future__ import annotations

import argparse
import csv
import json
import marshal
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "installer"))
import bundle_rules  # noqa: E402
from elf_scan import bundle_files, glibc_needed, is_elf  # noqa: E402

PREFIX = "opt/pneumodesk"
INSTALLED_BUDGET = 1_000_000_000  # bytes, ≤ 1.0 GB installed
PACKAGE_BUDGET = 320_000_000  # bytes, ≤ 320 MB .deb


@dataclass
class Report:
    figures: dict[str, object] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def check(self, ok: bool, failure: str) -> bool:
        if not ok:
            self.failures.append(failure)
        return ok


# --- what the bundle contains ------------------------------------------------------------------------------------


def archived_modules(executable: Path) -> list[str]:
    """The module names inside a PyInstaller executable's PYZ archive (its table of contents is a marshalled dict
    or list at the offset the archive's header gives). Empty when no archive is found."""
    data = executable.read_bytes()
    start = data.find(b"PYZ\x00")
    while start != -1:
        try:
            (toc_offset,) = struct.unpack("!i", data[start + 8 : start + 12])
            toc = marshal.loads(data[start + toc_offset :])
        except (ValueError, EOFError, TypeError, struct.error):
            toc = None
        if isinstance(toc, dict):
            return sorted(toc)
        if isinstance(toc, list) and toc and isinstance(toc[0], tuple):
            return sorted(entry[0] for entry in toc)
        start = data.find(b"PYZ\x00", start + 4)
    return []


def forbidden_content(bundle: Path, executables: Sequence[Path]) -> list[str]:
    """Forbidden files (paths) and forbidden modules in the executables' archives (``module:NAME``)."""
    found = bundle_rules.forbidden_paths(path.relative_to(bundle).as_posix() for path in bundle_files(bundle))
    for executable in executables:
        for name in archived_modules(executable):
            top = name.split(".")[0]
            if name.split(".")[0] in bundle_rules.EXCLUDED_MODULES or bundle_rules.is_test_module(name) or (
                    name.startswith("pneumodesk.coordinator")) or bundle_rules.is_forbidden(top):
                found.append(f"module:{name} (in {executable.name})")
    return sorted(set(found))


def system_libraries(bundle: Path, files: Sequence[Path] | None = None) -> dict[str, str]:
    """Libraries the bundle's ELF files (or ``files`` of it) load from outside it: soname → path (or 'not found')."""
    found: dict[str, str] = {}
    # PyInstaller's bootloader puts its library folder on LD_LIBRARY_PATH: resolve as the running app does.
    inner = bundle / "_internal"
    env = {**os.environ, "LD_LIBRARY_PATH": str(inner if inner.is_dir() else bundle)}
    for path in bundle_files(bundle) if files is None else files:
        if not is_elf(path):
            continue
        result = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False, env=env)
        for line in result.stdout.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[1] == "=>":
                soname, target = parts[0], parts[2]
                if target == "not":
                    found.setdefault(soname, "not found")
                elif not target.startswith(str(bundle)):
                    found[soname] = target
    return found


def _path_variants(target: str) -> list[str]:
    """A library's path as dpkg may have recorded it (Debian 12 merges /lib into /usr/lib)."""
    real = os.path.realpath(target)
    variants = [real, target]
    for path in (real, target):
        if path.startswith("/usr/lib/"):
            variants.append(path[len("/usr"):])
        elif path.startswith("/lib/"):
            variants.append("/usr" + path)
    return list(dict.fromkeys(variants))


def debian_packages(libraries: dict[str, str]) -> dict[str, str]:
    """soname → the Debian package providing it: one ``dpkg -S`` for all, else Debian's naming rule from the
    soname (libxcb-icccm.so.4 → libxcb-icccm4; libfoo1.so.2 → libfoo1-2) for what is not installed here."""
    candidates = {soname: _path_variants(target) for soname, target in libraries.items() if target != "not found"}
    owners: dict[str, str] = {}
    paths = sorted({path for variants in candidates.values() for path in variants})
    if paths:
        result = subprocess.run(["dpkg", "-S", *paths], capture_output=True, text=True, check=False)
        for line in result.stdout.splitlines():
            package, _, path = line.partition(": ")
            owners[path.strip()] = package.split(":")[0].split(",")[0].strip()
    found = {}
    for soname in libraries:
        owner = next((owners[path] for path in candidates.get(soname, []) if path in owners), None)
        found[soname] = owner or _package_from_soname(soname)
    return found


def _package_from_soname(soname: str) -> str:
    match = re.match(r"(lib.+?)\.so\.(\d+)", soname)
    if not match:
        return soname
    name, major = match.groups()
    return f"{name}-{major}" if name[-1].isdigit() else f"{name}{major}"


# libc6 and the toolchain runtime are always present; their libraries need no declaration beyond libc6.
ESSENTIAL = frozenset({"libc6", "libgcc-s1", "libstdc++6", "libc6:amd64", "libgcc-s1:amd64"})


def undeclared_libraries(libraries: dict[str, str], depends: str) -> dict[str, str]:
    """Soname → package for system libraries no Depends entry (or a package those pull in) provides."""
    declared = {re.split(r"[\s(]", item.strip())[0] for item in depends.split(",") if item.strip()}
    closure, level = set(declared), set(declared)
    while level:  # what the declared packages pull in, transitively (as installed on this machine), level by level
        result = subprocess.run(["dpkg-query", "-W", "-f", "${Depends},${Pre-Depends}\n", *sorted(level)],
                                capture_output=True, text=True, check=False)
        pulled = {re.split(r"[\s(:]", item.strip())[0] for item in re.split(r"[,|\n]", result.stdout)}
        level = {package for package in pulled if package} - closure
        closure |= level
    missing = {}
    for soname, package in sorted(debian_packages(libraries).items()):
        if package not in closure and package not in ESSENTIAL:
            missing[soname] = package
    return missing


UPGRADE_CODE = re.compile(r'UpgradeCode="([0-9A-F-]{36})"')


def wix_check(scratch: Path) -> str:
    """Compile installer/windows/pneumodesk.wxs with msitools' wixl around a small harvested fixture bundle and read
    the MSI's tables back: "compiled" or why not. Skipped ("not checked") where wixl is not installed."""
    if shutil.which("wixl") is None or shutil.which("wixl-heat") is None or shutil.which("msiinfo") is None:
        return "not checked: wixl, wixl-heat and msiinfo (Debian: wixl, msitools) are not installed"
    bundle = scratch / "wix" / "bundle"
    (bundle / "_internal").mkdir(parents=True)
    for name in ("pneumodesk.exe", "pneumodesk-desktop.exe", "install.json", "_internal/python311.dll"):
        (bundle / name).write_bytes(b"fixture")
    work = bundle.parent  # wixl takes relative source paths
    listing = "\n".join(str(path.relative_to(work)) for path in sorted(bundle.rglob("*")) if path.is_file())
    harvested = subprocess.run(["wixl-heat", "-p", "bundle/", "--component-group", "BundleFiles", "--var",
                                "var.BundleDir", "--directory-ref", "INSTALLDIR", "--win64"], input=listing,
                               capture_output=True, text=True, check=False, cwd=work)
    if harvested.returncode:
        return f"failed: wixl-heat: {harvested.stderr.strip()[-300:]}"
    (scratch / "wix" / "files.wxs").write_text(harvested.stdout, encoding="utf-8")
    source = ROOT / "installer" / "windows" / "pneumodesk.wxs"
    msi = scratch / "wix" / "pneumodesk.msi"
    compiled = subprocess.run(["wixl", "-a", "x64", "-D", "Wixl=yes", "-D", "Version=1.0.0", "-D", "BundleDir=bundle",
                               "-D", "Win64=yes", "-o", str(msi), str(source), "files.wxs"],
                              capture_output=True, text=True, check=False, cwd=work)
    if compiled.returncode or not msi.is_file():
        return f"failed: wixl: {compiled.stderr.strip()[-300:]}"
    tables = {table: subprocess.run(["msiinfo", "export", str(msi), table], capture_output=True, text=True,
                                    check=False).stdout for table in ("Property", "Upgrade", "Shortcut")}
    found = UPGRADE_CODE.search(source.read_text(encoding="utf-8"))
    code = found.group(1) if found else "(no UpgradeCode in the source)"
    problems = [what for what, ok in (
        ("ALLUSERS=1 (per machine)", "ALLUSERS\t1" in tables["Property"]),
        ("the UpgradeCode in the Upgrade table (MajorUpgrade)", code in tables["Upgrade"]),
        ("the Start-menu shortcut", "pneumodesk-desktop.exe" in tables["Shortcut"]),
    ) if not ok]
    return f"failed: the MSI lacks {', '.join(problems)}" if problems else "compiled"


def is_blank(png: Path) -> bool:
    from PIL import Image, ImageStat

    with Image.open(png) as image:
        stat = ImageStat.Stat(image.convert("L"))
        return stat.stddev[0] < 2.0


# --- running both installs ---------------------------------------------------------------------------------------


Run = tuple[subprocess.CompletedProcess[str], float]


class Runner:
    """Runs the installed app isolated (no network, install root mounted read-only) when root may unshare, else
    with the install root's write permissions removed (the figures say which)."""

    def __init__(self, install_root: Path, scratch: Path) -> None:
        self.install_root = install_root
        self.isolated = os.geteuid() == 0 and shutil.which("unshare") is not None and _unshare_works()
        self.env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(scratch / "home"),
            "XDG_DATA_HOME": str(scratch / "home" / "data"),
            "XDG_CONFIG_HOME": str(scratch / "home" / "config"),
            "XDG_CACHE_HOME": str(scratch / "home" / "cache"),
            "XDG_RUNTIME_DIR": str(scratch / "runtime"),
            "PNEUMODESK_MACHINE_HOME": str(scratch / "node"),  # the throw-away machine-wide data folder
            "QT_QPA_PLATFORM": "offscreen",
            "LANG": "C.UTF-8",
        }
        (scratch / "runtime").mkdir(mode=0o700)
        if not self.isolated:
            for path in [install_root, *install_root.rglob("*")]:
                if not path.is_symlink():
                    path.chmod(path.stat().st_mode & ~0o222)

    def installed(self, args: Sequence[str], timeout: float = 600, executable: Path | None = None) -> Run:
        command = [str(executable or self.install_root / PREFIX / "pneumodesk"), *args]
        if self.isolated:
            root = str(self.install_root)
            command = ["unshare", "--net", "--mount", "--", "sh", "-c",
                       'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" && shift && exec "$@"', "sh",
                       root, *command]
        return _timed(command, self.env, timeout)

    def development(self, args: Sequence[str], timeout: float = 600) -> Run:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
        env.pop("PNEUMODESK_MACHINE_HOME", None)
        return _timed([sys.executable, "-m", "pneumodesk", *args], env, timeout)


def _unshare_works() -> bool:
    result = subprocess.run(["unshare", "--net", "--mount", "--", "true"], capture_output=True, check=False)
    return result.returncode == 0


def _timed(command: Sequence[str], env: dict[str, str], timeout: float) -> Run:
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return result, time.perf_counter() - start


def _tail(result: subprocess.CompletedProcess[str]) -> str:
    return (result.stderr or result.stdout).strip()[-600:]


def read_probabilities(path: Path) -> dict[str, tuple[str, str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return {Path(row["path"]).name: (row["probability"], row.get("error", "")) for row in csv.DictReader(stream)}


def make_images(folder: Path) -> Path:
    """The bundled samples plus a JPEG-compressed DICOM of one of them (tests/builders.py makes it)."""
    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    from tests.builders import jpeg_compressed_dicom

    folder.mkdir()
    samples = sorted((ROOT / "resources" / "samples").glob("*.jpeg"))
    for sample in samples:
        shutil.copy(sample, folder / sample.name)
    with Image.open(samples[-1]) as image:
        pixels = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    jpeg_compressed_dicom(folder / "jpeg-baseline.dcm", pixels)
    return folder


# --- the check ---------------------------------------------------------------------------------------------------


def check(deb: Path, repeat: int, tolerance: float, scratch: Path) -> Report:
    report = Report()
    install_root = static_checks(deb, scratch, report)
    runtime_checks(install_root, scratch, repeat, tolerance, report)
    return report


def static_checks(deb: Path, scratch: Path, report: Report) -> Path:
    """What the package holds, without running it; returns the scratch install root."""
    figures = report.figures
    figures["deb_bytes"] = deb.stat().st_size
    report.check(deb.stat().st_size <= PACKAGE_BUDGET, f".deb is {deb.stat().st_size} bytes > {PACKAGE_BUDGET}")
    install_root = scratch / "root"
    install_root.mkdir(parents=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(install_root)], check=True)
    depends = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends"], capture_output=True, text=True,
                             check=True).stdout.strip()
    bundle = install_root / PREFIX
    installed_bytes = sum(path.lstat().st_size for path in install_root.rglob("*") if not path.is_dir())
    figures["installed_bytes"] = installed_bytes
    report.check(installed_bytes <= INSTALLED_BUDGET, f"installed size {installed_bytes} bytes > {INSTALLED_BUDGET}")
    link = install_root / "usr/bin/pneumodesk"
    report.check(link.is_symlink() and os.readlink(link) == f"/{PREFIX}/pneumodesk",
                 "/usr/bin/pneumodesk is not a link to /opt/pneumodesk/pneumodesk")
    executables = [bundle / "pneumodesk", bundle / "pneumodesk-desktop"]
    report.check(all(path.is_file() and os.access(path, os.X_OK) for path in executables),
                 "the bundle lacks one of its executables (pneumodesk, pneumodesk-desktop)")
    forbidden = forbidden_content(bundle, [path for path in executables if path.is_file()])
    figures["forbidden"] = forbidden[:50]
    report.check(not forbidden, f"the bundle contains {len(forbidden)} forbidden files/modules: {forbidden[:10]}")
    report.check(bool(archived_modules(executables[0])) if executables[0].is_file() else False,
                 "no module archive found in the CLI executable (the module check did not run)")
    figures["glibc_max"], figures["glibc_max_needed_by"] = glibc_needed(bundle)
    libraries = system_libraries(bundle)
    figures["system_libraries"] = len(libraries)
    missing = undeclared_libraries(libraries, depends)
    figures["undeclared_system_libraries"] = missing
    report.check(not missing, f"system libraries no declared dependency provides: {missing}")
    figures["wixl"] = wix_check(scratch)
    report.check(not str(figures["wixl"]).startswith("failed"), f"Windows installer source: {figures['wixl']}")
    return install_root


def runtime_checks(install_root: Path, scratch: Path, repeat: int, tolerance: float, report: Report) -> None:
    """The installed app run from ``install_root`` against the development install."""
    figures = report.figures
    runner = Runner(install_root, scratch)
    figures["isolation"] = "unshare: no network, install root read-only" if runner.isolated else (
        "not isolated (needs root): install root made non-writable, network available")

    dev_version, _ = runner.development(["--version"])
    version, _ = runner.installed(["--version"])
    figures["version"] = version.stdout.strip()
    report.check(version.returncode == 0 and version.stdout.strip() == dev_version.stdout.strip(),
                 f"--version: {version.stdout.strip()!r} (exit {version.returncode}), development install: "
                 f"{dev_version.stdout.strip()!r} {_tail(version)}")
    # Started the ways a user starts it: through a link on the PATH (/usr/bin/pneumodesk → …) and the menu entry's
    # desktop executable.
    (scratch / "bin").mkdir()
    (scratch / "bin" / "pneumodesk").symlink_to(install_root / PREFIX / "pneumodesk")
    for executable in (scratch / "bin" / "pneumodesk", install_root / PREFIX / "pneumodesk-desktop"):
        linked, _ = runner.installed(["--version"], executable=executable)
        report.check(linked.stdout.strip() == version.stdout.strip(),
                     f"{executable.name} through its link: {linked.stdout.strip()!r} {_tail(linked)}")
    figures["version_s_installed"] = _median(lambda: runner.installed(["--version"])[1], repeat)
    figures["version_s_development"] = _median(lambda: runner.development(["--version"])[1], repeat)

    images = make_images(scratch / "images")
    heatmaps = scratch / "heatmaps"
    predicted, seconds = runner.installed(["predict", str(images), "--csv", str(scratch / "installed.csv"),
                                           "--heatmap-dir", str(heatmaps)])
    figures["predict_s_installed"] = round(seconds, 2)
    developed, seconds = runner.development(["predict", str(images), "--csv", str(scratch / "development.csv"),
                                             "--heatmap-dir", str(scratch / "heatmaps-development")])
    figures["predict_s_development"] = round(seconds, 2)
    if report.check(predicted.returncode == 0 and (scratch / "installed.csv").is_file(),
                    f"installed predict failed (exit {predicted.returncode}): {_tail(predicted)}") and report.check(
            developed.returncode == 0, f"development predict failed: {_tail(developed)}"):
        ours = read_probabilities(scratch / "installed.csv")
        theirs = read_probabilities(scratch / "development.csv")
        errors = {name: error for name, (_, error) in ours.items() if error}
        report.check(not errors, f"installed predict reported errors: {errors}")
        report.check(set(ours) == set(theirs) == {path.name for path in images.iterdir()},
                     f"predicted files differ: installed {sorted(ours)}, development {sorted(theirs)}")
        differences = [abs(float(ours[name][0]) - float(theirs[name][0])) for name in ours
                       if name in theirs and ours[name][0] and theirs[name][0]]
        figures["images_predicted"] = len(differences)
        figures["dicom_probability"] = ours.get("jpeg-baseline.dcm", ("", ""))[0]
        figures["max_probability_difference"] = max(differences) if differences else None
        report.check(len(differences) == len(ours) and max(differences, default=1.0) <= tolerance,
                     f"probabilities differ from the development install by up to {max(differences, default=None)} "
                     f"(tolerance {tolerance})")
        maps = sorted(heatmaps.glob("*.png")) if heatmaps.is_dir() else []
        figures["heatmaps"] = len(maps)
        report.check(len(maps) == len(ours) and not any(is_blank(png) for png in maps),
                     f"{len(maps)} heat maps (non-blank) for {len(ours)} images")

    shots_installed: list[float] = []
    shots_development: list[float] = []
    for run in range(repeat):
        out = scratch / f"shots-installed-{run}"
        shot, seconds = runner.installed(["gui", "--screenshots", str(out)])
        shots_installed.append(seconds)
        if not report.check(shot.returncode == 0, f"installed gui --screenshots failed: {_tail(shot)}"):
            break
        dev_out = scratch / f"shots-development-{run}"
        dev_shot, seconds = runner.development(["gui", "--screenshots", str(dev_out)])
        shots_development.append(seconds)
        if not report.check(dev_shot.returncode == 0, f"development gui --screenshots failed: {_tail(dev_shot)}"):
            break
        if run == 0:
            pages = sorted(path.name for path in out.glob("*.png"))
            expected = sorted(path.name for path in dev_out.glob("*.png"))
            blank = [name for name in pages if is_blank(out / name)]
            figures["pages"] = len(pages)
            report.check(pages == expected and bool(pages), f"installed pages {pages} != development {expected}")
            report.check(not blank, f"blank pages: {blank}")
    if shots_installed:
        figures["screenshots_s_installed"] = round(statistics.median(shots_installed), 2)
    if shots_development:
        figures["screenshots_s_development"] = round(statistics.median(shots_development), 2)


def _median(measure: object, repeat: int) -> float:
    assert callable(measure)
    return round(statistics.median(measure() for _ in range(max(repeat, 1))), 3)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deb", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (medians); screenshots run this often")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pneumodesk-installed-") as scratch:
        report = check(args.deb, args.repeat, args.tolerance, Path(scratch))
    report.figures["check_s"] = round(time.perf_counter() - start, 1)
    document = {**report.figures, "failures": report.failures, "ok": not report.failures}
    text = json.dumps(document, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0 if not report.failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
