#!/usr/bin/env bash
# Build the workstation bundle (PyInstaller, one folder) and the Debian package, with an SBOM and a vulnerability
# check of the runtime lock.  Usage:
#     installer/build.sh TORCH_SOURCE
# TORCH_SOURCE is a CPU-only torch wheel file (torch-*+cpu-*.whl) or the URL of a CPU wheel index
# (https://download.pytorch.org/whl/cpu).  PyPI's Linux torch is the CUDA build (a 5.9 GB bundle): never used here.
# Environment: AUDIT=strict (default: the build fails unless pip-audit checked every package and found no known
#              vulnerability: an unreachable service or a package PyPI does not know fails it too)
#              or AUDIT=report (both are printed and recorded in build/installer/sbom/audit-status.txt, the build goes on).
# Everything lands in build/installer/ (dist/pneumodesk = the bundle, pneumodesk_VERSION_amd64.deb, sbom/).
# The build venv (build/installer-venv) is reused while its inputs (torch source, runtime requirements) are unchanged.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/build/installer"
VENV="$ROOT/build/installer-venv"
TOOLS="$ROOT/build/installer-tools-venv"
PYTHON="${PYTHON:-python3}"
PYINSTALLER_PIN="pyinstaller==6.22.3"
AUDIT="${AUDIT:-strict}"
TORCH_SOURCE="${1:-}"

say() { printf '[installer] %s\n' "$*" >&2; }
die() { printf '[installer] ERROR: %s\n' "$*" >&2; exit 1; }
pip_quiet() { "$@" --quiet --disable-pip-version-check 2> >(grep -v "^WARNING: Location '" >&2); }

if [[ -z "$TORCH_SOURCE" ]]; then
    die "no CPU-only torch given. Pass a wheel file (make installer TORCH=/path/torch-X+cpu-cp311-….whl) or the \
CPU wheel index (make installer TORCH=https://download.pytorch.org/whl/cpu). PyPI's Linux torch is the CUDA build \
and is not used."
fi
case "$TORCH_SOURCE" in
    http://*|https://*) TORCH_ARGS=(--extra-index-url "$TORCH_SOURCE" "torch==$(grep -oP 'torch==\K[0-9.]+' \
        "$ROOT/pyproject.toml" | head -1)+cpu") ;;
    *) [[ -f "$TORCH_SOURCE" ]] || die "torch wheel not found: $TORCH_SOURCE"
       [[ "$(basename "$TORCH_SOURCE")" == torch-*+cpu-*.whl ]] || die "not a CPU-only torch wheel (torch-*+cpu-*.whl): $TORCH_SOURCE"
       TORCH_ARGS=("$TORCH_SOURCE") ;;
esac

mkdir -p "$OUT"
START=$(date +%s)
REQUIREMENTS="$OUT/runtime-requirements.txt"
"$PYTHON" "$ROOT/installer/runtime_requirements.py" "$ROOT" > "$REQUIREMENTS"
KEY="$( (echo "$TORCH_SOURCE $PYINSTALLER_PIN"; cat "$REQUIREMENTS") | sha256sum | cut -c1-16)"
if [[ -f "$VENV/.inputs" && "$(cat "$VENV/.inputs")" == "$KEY" ]]; then
    say "reusing the build venv $VENV"
else
    say "creating the build venv $VENV (CPU torch from $TORCH_SOURCE, runtime requirements, $PYINSTALLER_PIN)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    pip_quiet "$VENV/bin/python" -m pip install "${TORCH_ARGS[@]}" -r "$REQUIREMENTS" "$PYINSTALLER_PIN"
    echo "$KEY" > "$VENV/.inputs"
fi
"$VENV/bin/python" -c "import torch, sys; sys.exit(0 if torch.version.cuda is None else \
'the build venv has a CUDA torch (' + torch.__version__ + '): pass a CPU-only wheel')"
VERSION="$("$VENV/bin/python" -c "import sys; sys.path.insert(0, '$ROOT'); import pneumodesk; print(pneumodesk.__version__)")"

# The runtime lock: what the bundle is frozen from, without the build tools.
"$VENV/bin/python" -m pip freeze --all --exclude-editable 2>/dev/null \
    | grep -viE '^(pyinstaller|pyinstaller-hooks-contrib|altgraph|pip|setuptools|wheel)==' > "$OUT/runtime-lock.txt"

say "freezing PneumoDesk $VERSION with PyInstaller"
rm -rf "$OUT/dist/pneumodesk"
# (torch warns about its own deprecated modules as the hook imports them all: noise, not our concern)
PYTHONWARNINGS=ignore::DeprecationWarning nice -n 5 "$VENV/bin/python" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$OUT/dist" --workpath "$OUT/work" "$ROOT/installer/pneumodesk.spec"
FROZEN=$(date +%s)

say "licence texts into the bundle, supplementary SBOM"
mkdir -p "$OUT/sbom"
"$VENV/bin/python" "$ROOT/installer/sbom.py" supplement --bundle "$OUT/dist/pneumodesk" --root "$ROOT" --out "$OUT/sbom"

say "building the Debian package"
rm -f "$OUT"/pneumodesk_*.deb
"$VENV/bin/python" "$ROOT/installer/linux/make_deb.py" --bundle "$OUT/dist/pneumodesk" --version "$VERSION" \
    --out "$OUT"
PACKAGED=$(date +%s)

say "CycloneDX SBOM of the runtime and the vulnerability check of the runtime lock (pip-audit, AUDIT=$AUDIT)"
if [[ ! -x "$TOOLS/bin/cyclonedx-py" || ! -x "$TOOLS/bin/pip-audit" ]]; then
    rm -rf "$TOOLS"; "$PYTHON" -m venv "$TOOLS"
    pip_quiet "$TOOLS/bin/python" -m pip install "cyclonedx-bom>=4" "pip-audit>=2.7"
fi
"$TOOLS/bin/cyclonedx-py" environment --output-format JSON --output-file "$OUT/sbom/environment.cdx.json" \
    "$VENV/bin/python" 2> >(grep -v "^WARNING: Location '" >&2)
"$VENV/bin/python" "$ROOT/installer/sbom.py" prune "$OUT/sbom/environment.cdx.json"
# torch installed from a wheel file is a URL requirement, which pip-audit cannot look up: audit it as the release it
# is (PyPI's advisories for torch X apply to X+cpu).
sed -E 's#^torch @ .*/torch-([0-9.]+)(%2B|\+)cpu.*#torch==\1#' "$OUT/runtime-lock.txt" > "$OUT/sbom/audit-lock.txt"
set +e
"$TOOLS/bin/pip-audit" --requirement "$OUT/sbom/audit-lock.txt" --no-deps --disable-pip --progress-spinner off \
    --format json --output "$OUT/sbom/pip-audit.json" 2> "$OUT/sbom/pip-audit.log"
AUDIT_RC=$?
rm -f "$OUT/sbom/pip-audit.json.tmp"
"$VENV/bin/python" "$ROOT/installer/sbom.py" audit "$OUT/sbom/pip-audit.json" "$OUT/sbom/pip-audit.log" "$AUDIT_RC" \
    "$AUDIT" > "$OUT/sbom/audit-status.txt"
VERDICT_RC=$?
set -e
cat "$OUT/sbom/audit-status.txt" >&2
[[ $VERDICT_RC == 0 ]] || die "the vulnerability check did not pass (above; AUDIT=report builds anyway and records it)"
END=$(date +%s)
say "done in $((END - START)) s (venv+freeze $((FROZEN - START)) s, package $((PACKAGED - FROZEN)) s): \
$OUT/dist/pneumodesk, $(ls "$OUT"/pneumodesk_*.deb)"
printf '{"build_s": %d, "freeze_s": %d, "package_s": %d, "audit": "%s"}\n' $((END - START)) $((FROZEN - START)) \
    $((PACKAGED - FROZEN)) "$(tail -1 "$OUT/sbom/audit-status.txt")" > "$OUT/build-times.json"
