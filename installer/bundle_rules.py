"""What the workstation bundle leaves out: one list, read by the PyInstaller spec (to exclude), by the installed-app
check (to prove the bundle holds none of it) and by the tests.

Plain standard-library Python: the spec runs it inside PyInstaller, the check and the tests inside the dev venv.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePosixPath

#: Modules the app never imports at run time that some dependency may still pull in: the Grad-CAM oracle's stack
#: (torchvision, OpenCV, matplotlib), torch's compiler stack (triton), the coordinator's server (the `coordinator`
#: extra), test and dev tools, the build tools themselves.
EXCLUDED_MODULES = (
    "torchvision",
    "cv2",
    "triton",
    "matplotlib",
    "pytorch_grad_cam",
    "tkinter",
    "IPython",
    "fastapi",
    "uvicorn",
    "starlette",
    "prometheus_client",
    "pytest",
    "_pytest",
    "hypothesis",
    "schemathesis",
    "mypy",
    "ruff",
    "importlinter",
    "pip",
    "PyInstaller",
    # Build tools some libraries reference (cffi's distutils shim, torch's C++ extension builder); pkg_resources'
    # PyInstaller runtime hook would run at every start, and failed on a half-upgraded setuptools of the build venv.
    "setuptools",
    "pkg_resources",
    "_distutils_hack",
    "distutils",
    "pneumodesk.coordinator",  # the federation's server; `pneumodesk-coordinator` is not part of a workstation
)

#: Path parts (folders or file-name stems, case-insensitive) that must not appear anywhere in the bundle.
FORBIDDEN_PARTS = frozenset(
    {"tests", "test", "testing_data", "nvidia", "triton", "cv2", "opencv_python.libs", "torchvision",
     "torchvision.libs", "matplotlib", "pytest", "_pytest", "hypothesis", "schemathesis", "mypy", "ruff",
     "importlinter", "fastapi", "uvicorn", "pyinstaller", "pytorch_grad_cam"}
)
#: File names that give a forbidden library away wherever it sits (CUDA runtimes, OpenCV, triton's compiler).
FORBIDDEN_FILE = re.compile(r"^(libcu(da|dnn|blas|fft|rand|solver|sparse|pti)|libnv|libnccl|libopencv|libtriton)",
                            re.IGNORECASE)

#: torch/bin holds test and benchmark programs; only the shared-memory manager (DataLoader workers) is needed.
TORCH_BIN_KEEP = "torch_shm_manager"
#: torch/lib's test and example libraries (TorchScript backends and custom ops built for torch's own tests).
TORCH_TEST_LIBRARIES = frozenset(
    {"libtorchbind_test.so", "libjitbackend_test.so", "libbackend_with_compiler.so", "libaoti_custom_ops.so"}
)
#: Qt's GTK 3 platform theme: it would drag a copy of the build machine's GTK stack into the bundle (and mix it
#: with the workstation's own GTK at run time, a classic crash); Qt's own Fusion style is used instead. These are
#: the libraries only that plugin loads (the check fails on any library left without its provider).
GTK_THEME_PLUGIN = "libqgtk3.so"
GTK_STACK = re.compile(
    r"^lib(gtk-3|gdk-3|gdk_pixbuf-2\.0|cairo|cairo-gobject|pango-1\.0|pangocairo-1\.0|pangoft2-1\.0|atk-1\.0|"
    r"atk-bridge-2\.0|atspi|epoxy|fribidi|thai|datrie|graphite2|pixman-1|harfbuzz|Xrender|Xext)\.so"
)


def is_forbidden(relative: str) -> bool:
    """True when a bundle path (relative, ``/``-separated) belongs to something the bundle must not contain."""
    path = PurePosixPath(relative.replace("\\", "/"))
    parts = [part.lower() for part in path.parts]
    stems = {part.split(".", 1)[0] for part in parts} | set(parts)
    if stems & FORBIDDEN_PARTS or any(part.endswith(".dist-info") and _dist(part) in FORBIDDEN_PARTS for part in parts):
        return True
    if FORBIDDEN_FILE.match(path.name):
        return True
    if path.name in TORCH_TEST_LIBRARIES or path.name == GTK_THEME_PLUGIN:
        return True
    for index in range(len(parts) - 1):  # torch/bin/<anything but the shm manager>
        if parts[index] == "torch" and parts[index + 1] == "bin" and path.name != TORCH_BIN_KEEP:
            return True
    return False


def _dist(dist_info: str) -> str:
    """``opencv_python-4.10.0.dist-info`` → ``opencv_python``; normalised like the names in FORBIDDEN_PARTS."""
    return dist_info.split("-", 1)[0].lower()


def keep(relative: str) -> bool:
    """The spec's filter for binaries and data files (a path inside the bundle): nothing forbidden, no GTK stack
    (only the dropped GTK theme plugin loads it), no Qt translations (the app's text is English only)."""
    path = PurePosixPath(relative.replace("\\", "/"))
    if GTK_STACK.match(path.name) and len(path.parts) <= 2:  # top-level copies of system libraries only
        return False
    if "PySide6/Qt/translations" in path.as_posix():
        return False
    return not is_forbidden(relative)


def forbidden_paths(paths: Iterable[str]) -> list[str]:
    """The offending paths, sorted (the check reports them)."""
    return sorted(path for path in paths if is_forbidden(path))


def is_test_module(name: str) -> bool:
    """A dotted module name inside a test package (``scipy.linalg.tests.test_x``): the spec drops these."""
    return bool({"tests", "test"} & set(name.split(".")))
