"""Build ``pneumodesk_VERSION_amd64.deb`` from a frozen bundle with ``dpkg-deb``.

The package installs the bundle under /opt/pneumodesk, links /usr/bin/pneumodesk to its CLI, adds a desktop entry
and icon, and declares the system libraries the bundle loads from the OS (Qt's xcb platform plugin and its GL, font
and D-Bus libraries; glibc). Its maintainer scripts create the machine-wide node home /var/lib/pneumodesk, shared
by the ``pneumodesk`` group (setgid, 2770, see pneumodesk/node/homes.py), and leave the data on removal and purge.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = "pneumodesk"
PREFIX = "opt/pneumodesk"
MACHINE_HOME = "/var/lib/pneumodesk"
GROUP = "pneumodesk"
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from elf_scan import glibc_needed  # noqa: E402

#: What the bundle needs from the OS, found with ldd on the frozen bundle (Qt's libqxcb.so, libQt6XcbQpa, Gui,
#: DBus, the xcb GL integration, the Wayland plugin) and mapped to Debian 12 packages with dpkg -S. PyInstaller copies
#: some of these into the bundle too when the build machine has them; declaring them costs nothing.
#: installer/check_install.py checks on every build that each system library the bundle loads comes from one of these.
DEPENDS = (
    "libc6",  # with the version the bundle's ELF files need, found at build time (stage())
    "libdbus-1-3",
    "libegl1",
    "libfontconfig1",
    "libfreetype6",
    "libgl1",
    "libglib2.0-0",
    "libx11-6",
    "libx11-xcb1",
    "libxcb1",
    "libxcb-cursor0",
    "libxcb-glx0",
    "libxcb-icccm4",
    "libxcb-image0",
    "libxcb-keysyms1",
    "libxcb-randr0",
    "libxcb-render0",
    "libxcb-render-util0",
    "libxcb-shape0",
    "libxcb-shm0",
    "libxcb-sync1",
    "libxcb-util1",
    "libxcb-xfixes0",
    "libxcb-xkb1",
    "libxkbcommon0",
    "libxkbcommon-x11-0",
    "libwayland-cursor0",  # Qt's Wayland platform plugin (a Wayland desktop session)
    "libwayland-egl1",
    "adduser",
)


def with_glibc(glibc: str, depends: tuple[str, ...] = DEPENDS) -> tuple[str, ...]:
    """DEPENDS with ``libc6 (>= GLIBC)`` (nothing added when the bundle has no ELF file, as in the tests)."""
    return tuple(f"libc6 (>= {glibc})" if item == "libc6" and glibc != "0" else item for item in depends)


def control(version: str, installed_kib: int, depends: tuple[str, ...] = DEPENDS) -> str:
    return (
        f"Package: {PACKAGE}\n"
        f"Version: {version}\n"
        "Section: science\n"
        "Priority: optional\n"
        "Architecture: amd64\n"
        "Maintainer: PneumoDesk team <pneumodesk@invalid>\n"
        f"Installed-Size: {installed_kib}\n"
        f"Depends: {', '.join(depends)}\n"
        "Description: On-device pneumonia detection on chest X-rays (workstation app)\n"
        " PneumoDesk reads chest X-rays (PNG, JPEG, DICOM), shows a model's pneumonia probability with a heat map,\n"
        " and takes part in privacy-preserving federated training. One node per workstation: its data lives in\n"
        f" {MACHINE_HOME}, shared by the members of the '{GROUP}' group.\n"
    )


def _tree_kib(folder: Path) -> int:
    return sum((path.lstat().st_size + 1023) // 1024 for path in folder.rglob("*") if not path.is_symlink()) or 1


def stage(bundle: Path, root: Path, version: str) -> Path:
    """Lay out the package tree under ``root``: bundle, PATH link, desktop entry, icon, DEBIAN/ control files."""
    target = root / PREFIX
    shutil.copytree(bundle, target, symlinks=True)
    (target / "install.json").write_text(json.dumps({"machine_home": MACHINE_HOME}, indent=2) + "\n", encoding="utf-8")
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/pneumodesk").symlink_to(f"/{PREFIX}/pneumodesk")
    applications = root / "usr/share/applications"
    applications.mkdir(parents=True)
    shutil.copy(HERE / "pneumodesk.desktop", applications / "pneumodesk.desktop")
    icons = root / "usr/share/icons/hicolor/scalable/apps"
    icons.mkdir(parents=True)
    shutil.copy(HERE.parent / "pneumodesk.svg", icons / "pneumodesk.svg")
    docs = root / "usr/share/doc/pneumodesk"
    docs.mkdir(parents=True)
    shutil.copy(HERE / "README.Debian", docs / "README.Debian")
    debian = root / "DEBIAN"
    debian.mkdir()
    glibc, _ = glibc_needed(target)
    (debian / "control").write_text(control(version, _tree_kib(root), with_glibc(glibc)), encoding="utf-8")
    for script in ("postinst", "prerm", "postrm"):
        shutil.copy(HERE / script, debian / script)
        (debian / script).chmod(0o755)
    for path in [root, *root.rglob("*")]:  # packages are built as root-owned, files 644/755 whatever the umask
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod(0o755 if path.is_dir() or mode & 0o111 else 0o644)
    return root


def build(bundle: Path, version: str, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    deb = out / f"{PACKAGE}_{version}_amd64.deb"
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        root = stage(bundle, Path(scratch) / "root", version)
        # zstd -9: 282 MB for a 957 MB bundle in ~30 s of CPU, where dpkg-deb's default xz -6 had used 2.4 minutes
        # of CPU and was far from done (too slow for CI). dpkg reads zstd since 1.21.18 (Debian 12, Ubuntu 21.10):
        # older than the glibc this bundle needs anyway.
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zzstd", "-z9", "--build", str(root), str(deb)], check=True,
                       stdout=subprocess.DEVNULL, env={**os.environ, "SOURCE_DATE_EPOCH": "0"})
    return deb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", type=Path, required=True, help="the frozen one-folder bundle (dist/pneumodesk)")
    parser.add_argument("--version", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(build(args.bundle, args.version, args.out))


if __name__ == "__main__":
    main()
