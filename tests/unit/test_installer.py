"""The workstation installer's pieces that run in a second: what the bundle leaves out, the .deb's layout and
declared dependencies (built for real with dpkg-deb from a small fixture bundle), the installed-app check's failure
paths, the SBOM's pruning and the vulnerability check's verdicts. The full build runs in `make installer-check`."""

from __future__ import annotations

import importlib.util
import json
import marshal
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "installer"), str(ROOT / "installer" / "linux")]

import bundle_rules  # noqa: E402
import check_install  # noqa: E402
import make_deb  # noqa: E402
import sbom  # noqa: E402

from pneumodesk.node import homes  # noqa: E402


@pytest.mark.parametrize(
    ("path", "kept"),
    [
        ("_internal/torch/bin/torch_shm_manager", True),
        ("_internal/torch/lib/libtorch_cpu.so", True),
        ("_internal/numpy.libs/libscipy_openblas64_-ff651d7f.so", True),
        ("_internal/resources/models/default/model.safetensors", True),
        ("_internal/pneumodesk/node/migrations/versions/0001_initial.py", True),
        ("_internal/torch/bin/test_api", False),
        ("_internal/torch/bin/protoc", False),
        ("_internal/torch/test/test_torch.py", False),
        ("_internal/scipy/linalg/tests/data/x.npz", False),
        ("_internal/nvidia/cublas/lib/libcublas.so.12", False),
        ("_internal/libcudnn.so.9", False),
        ("_internal/triton/_C/libtriton.so", False),
        ("_internal/cv2/cv2.abi3.so", False),
        ("_internal/opencv_python.libs/libavcodec.so", False),
        ("_internal/torchvision/_C.so", False),
        ("_internal/pytest-8.3.0.dist-info/METADATA", False),
        ("_internal/torch/lib/libtorchbind_test.so", False),
        ("_internal/PySide6/Qt/plugins/platformthemes/libqgtk3.so", False),
        ("_internal/PySide6/Qt/plugins/platforms/libqxcb.so", True),
    ],
)
def test_the_bundle_keeps_what_the_app_runs_and_drops_the_rest(path: str, kept: bool) -> None:
    assert bundle_rules.keep(path) is kept


@pytest.mark.parametrize(
    ("dest", "kept"),
    [
        ("libcairo.so.2", False),  # the GTK stack only Qt's GTK theme plugin loads
        ("libpangocairo-1.0.so.0", False),
        ("libharfbuzz.so.0", False),
        ("pillow.libs/libharfbuzz-fb49c9fc.so.0.61450.0", True),  # Pillow's own copy: Pillow needs it
        ("libxcb-cursor.so.0", True),
        ("PySide6/Qt/translations/qtbase_de.qm", False),
        ("PySide6/Qt/lib/libQt6Gui.so.6", True),
    ],
)
def test_the_spec_filter_drops_the_gtk_stack_and_qt_translations(dest: str, kept: bool) -> None:
    assert bundle_rules.keep(dest) is kept


def test_test_packages_are_dropped_from_the_module_archive() -> None:
    assert bundle_rules.is_test_module("scipy.linalg.tests.test_basic")
    assert not bundle_rules.is_test_module("torch.testing")
    assert not bundle_rules.is_test_module("pneumodesk.node.store")


def test_the_spec_never_strips_and_builds_one_folder() -> None:
    spec = (ROOT / "installer" / "pneumodesk.spec").read_text(encoding="utf-8")
    assert "strip=True" not in spec and spec.count("strip=False") >= 2
    assert "COLLECT(" in spec and "exclude_binaries=True" in spec  # one-folder: binaries beside the executables
    assert "bundle_rules.EXCLUDED_MODULES" in spec and "bundle_rules.keep" in spec


# --- a fixture bundle, packaged for real -------------------------------------------------------------------------


def fake_executable(path: Path, modules: list[str]) -> Path:
    """A stand-in for a PyInstaller executable: a shell script followed by a PYZ archive naming ``modules``."""
    toc = marshal.dumps({name: (0, 0, 0) for name in modules})
    path.write_bytes(b"#!/bin/sh\necho PneumoDesk 0.0.1\nexit 0\n" + b"PYZ\x00" + b"\x00" * 4 + struct.pack("!i", 12)
                     + toc)
    path.chmod(0o755)
    return path


def fixture_bundle(folder: Path, modules: list[str], extra: tuple[str, ...] = ()) -> Path:
    bundle = folder / "pneumodesk"
    (bundle / "_internal" / "resources").mkdir(parents=True)
    (bundle / "_internal" / "resources" / "README.md").write_text("samples\n", encoding="utf-8")
    for name in ("pneumodesk", "pneumodesk-desktop"):
        fake_executable(bundle / name, modules)
    for relative in extra:
        (bundle / relative).parent.mkdir(parents=True, exist_ok=True)
        (bundle / relative).write_bytes(b"\x00" * 16)
    return bundle


def test_the_package_installs_under_opt_with_a_path_link_menu_entry_and_machine_home(tmp_path: Path) -> None:
    deb = make_deb.build(fixture_bundle(tmp_path, ["pneumodesk"]), "1.2.3", tmp_path / "out")
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"^-rwxr-xr-x root/root .* \./opt/pneumodesk/pneumodesk$", listing, re.M)
    assert re.search(r"^-rwxr-xr-x root/root .* \./opt/pneumodesk/pneumodesk-desktop$", listing, re.M)
    assert "./usr/bin/pneumodesk -> /opt/pneumodesk/pneumodesk" in listing
    assert "./usr/share/applications/pneumodesk.desktop" in listing
    assert "./usr/share/icons/hicolor/scalable/apps/pneumodesk.svg" in listing
    fields = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Version", "Architecture"], capture_output=True,
                            text=True, check=True).stdout
    assert fields.split() == ["Package:", "pneumodesk", "Version:", "1.2.3", "Architecture:", "amd64"]
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    install = json.loads((root / "opt/pneumodesk/install.json").read_text(encoding="utf-8"))
    assert Path(install["machine_home"]) == homes.default_machine_home("linux")
    desktop = (root / "usr/share/applications/pneumodesk.desktop").read_text(encoding="utf-8")
    assert "Exec=/opt/pneumodesk/pneumodesk-desktop" in desktop and "Icon=pneumodesk" in desktop


def test_the_package_asks_for_the_glibc_the_bundle_needs() -> None:
    depends = make_deb.with_glibc("2.36")
    assert "libc6 (>= 2.36)" in depends and "libc6" not in depends
    assert make_deb.with_glibc("0") == make_deb.DEPENDS  # no ELF file (the fixture bundles): no version


def test_postinst_creates_the_machine_home_homes_py_expects_and_removal_keeps_the_data() -> None:
    postinst = (ROOT / "installer/linux/postinst").read_text(encoding="utf-8")
    home = str(homes.default_machine_home("linux"))
    # setgid, group rw, nobody else: what the app's umask (MACHINE_UMASK) keeps for every file it creates there.
    assert f"install -d -o root -g pneumodesk -m 2770 {home}" in postinst
    assert homes.MACHINE_UMASK == 0o007
    for script in ("prerm", "postrm"):
        text = (ROOT / "installer/linux" / script).read_text(encoding="utf-8")
        assert not re.search(r"^\s*rm\b.*" + re.escape(home), text, re.M), f"{script} deletes the node's data"


def test_the_declared_dependencies_cover_every_system_library_qts_xcb_plugin_loads() -> None:
    spec = importlib.util.find_spec("PySide6")  # found, not imported: Qt stays in pneumodesk/gui
    assert spec is not None and spec.origin is not None
    qt = Path(spec.origin).parent / "Qt"
    files = [qt / "plugins/platforms/libqxcb.so", *sorted((qt / "lib").glob("libQt6XcbQpa.so*")),
             *sorted((qt / "lib").glob("libQt6Gui.so*")), *sorted((qt / "lib").glob("libQt6DBus.so*")),
             *sorted((qt / "plugins/xcbglintegrations").glob("*.so"))]
    libraries = check_install.system_libraries(qt, files)
    assert "libxcb-cursor.so.0" in libraries  # the library whose absence kills a fresh desktop's start
    assert check_install.undeclared_libraries(libraries, ", ".join(make_deb.DEPENDS)) == {}
    without_cursor = ", ".join(d for d in make_deb.DEPENDS if d != "libxcb-cursor0")
    assert check_install.undeclared_libraries(libraries, without_cursor) == {"libxcb-cursor.so.0": "libxcb-cursor0"}


def test_the_check_passes_a_clean_package_and_reports_a_forbidden_library_and_module(tmp_path: Path) -> None:
    clean = make_deb.build(fixture_bundle(tmp_path / "clean", ["pneumodesk", "torch"]), "1.0", tmp_path / "clean")
    report = check_install.Report()
    check_install.static_checks(clean, tmp_path / "scratch-clean", report)
    assert report.failures == []

    dirty = make_deb.build(
        fixture_bundle(tmp_path / "dirty", ["pneumodesk", "torchvision.models", "scipy.linalg.tests.test_basic",
                                            "pkg_resources"],
                       extra=("_internal/cv2/cv2.abi3.so", "_internal/nvidia/cublas/lib/libcublas.so.12")),
        "1.0", tmp_path / "dirty")
    report = check_install.Report()
    check_install.static_checks(dirty, tmp_path / "scratch-dirty", report)
    assert len(report.failures) == 1 and "forbidden" in report.failures[0]
    assert set(report.figures["forbidden"]) >= {"module:pkg_resources (in pneumodesk)"}  # type: ignore[operator]
    assert set(report.figures["forbidden"]) - {"module:pkg_resources (in pneumodesk)",  # type: ignore[operator]
                                               "module:pkg_resources (in pneumodesk-desktop)"} == {
        "_internal/cv2/cv2.abi3.so",
        "_internal/nvidia/cublas/lib/libcublas.so.12",
        "module:scipy.linalg.tests.test_basic (in pneumodesk)",
        "module:scipy.linalg.tests.test_basic (in pneumodesk-desktop)",
        "module:torchvision.models (in pneumodesk)",
        "module:torchvision.models (in pneumodesk-desktop)",
    }


def test_the_check_fails_when_it_cannot_read_the_module_archive(tmp_path: Path) -> None:
    bundle = fixture_bundle(tmp_path, [])
    for name in ("pneumodesk", "pneumodesk-desktop"):
        (bundle / name).write_bytes(b"#!/bin/sh\nexit 0\n")
    report = check_install.Report()
    check_install.static_checks(make_deb.build(bundle, "1.0", tmp_path / "out"), tmp_path / "scratch", report)
    assert any("no module archive" in failure for failure in report.failures)


# --- SBOM and the vulnerability check ----------------------------------------------------------------------------


def test_the_sbom_drops_the_build_tools_and_keeps_the_runtime(tmp_path: Path) -> None:
    document = {
        "components": [{"bom-ref": "torch==2.13.0", "name": "torch"},
                       {"bom-ref": "pyinstaller==6", "name": "PyInstaller"},
                       {"bom-ref": "altgraph==0.17", "name": "altgraph"}],
        "dependencies": [{"ref": "torch==2.13.0", "dependsOn": []},
                         {"ref": "pyinstaller==6", "dependsOn": ["altgraph==0.17"]}],
    }
    path = tmp_path / "sbom.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    assert sbom.prune(path) == 2
    pruned = json.loads(path.read_text(encoding="utf-8"))
    assert [c["name"] for c in pruned["components"]] == ["torch"]
    assert pruned["dependencies"] == [{"ref": "torch==2.13.0", "dependsOn": []}]


def test_the_audit_verdict_names_vulnerabilities_and_an_unreachable_service(tmp_path: Path) -> None:
    report, log = tmp_path / "audit.json", tmp_path / "audit.log"
    log.write_text("ConnectionError: HTTPSConnectionPool(host='pypi.org'): Max retries exceeded\n", encoding="utf-8")
    verdict, lines = sbom.audit_verdict(report, log, 1)
    assert verdict == "not run" and "NOT RUN" in lines[0] and "pypi.org" in lines[0]

    report.write_text(json.dumps({"dependencies": [
        {"name": "pillow", "version": "10.0.0", "vulns": [{"id": "GHSA-x", "fix_versions": ["10.3.0"]}]},
        {"name": "torch", "version": "2.13.0+cpu", "skip_reason": "not found on PyPI"},
    ]}), encoding="utf-8")
    verdict, lines = sbom.audit_verdict(report, log, 1)
    assert verdict == "vulnerable"
    assert "  VULNERABLE pillow 10.0.0: GHSA-x (fixed in 10.3.0)" in lines
    assert any("not checked: torch" in line for line in lines)

    report.write_text(json.dumps({"dependencies": [
        {"name": "pillow", "version": "11.0", "vulns": []},
        {"name": "scipy", "version": "1.17.1", "skip_reason": "Dependency not found on PyPI and could not be audited"},
    ]}), encoding="utf-8")
    verdict, lines = sbom.audit_verdict(report, log, 0)
    assert verdict == "incomplete" and lines[0].startswith("VULNERABILITY CHECK INCOMPLETE: 1 of 2")

    report.write_text(json.dumps({"dependencies": [{"name": "pillow", "version": "11.0", "vulns": []}]}),
                      encoding="utf-8")
    assert sbom.audit_verdict(report, log, 0)[0] == "clean"
