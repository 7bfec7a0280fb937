#!/usr/bin/env bash
# PneumoDesk for macOS: an installer package (.pkg, per machine) from the frozen bundle.  NOT RUN by the project
# (no macOS machine, no Apple Developer ID): a recipe to start from, see README "Installing on workstations".
# Needs: macOS 12+, Python 3.11 from python.org, Xcode command-line tools (pkgbuild, productbuild).
# Usage: installer/macos/build-macos.sh TORCH_WHEEL_OR_INDEX   (a CPU torch: on macOS PyPI's torch is CPU/MPS)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="$ROOT/build/installer"
VENV="$ROOT/build/installer-venv"
TORCH="${1:?pass a torch wheel file or index URL}"
python3.11 -m venv "$VENV"
case "$TORCH" in http*) TORCH_ARGS=(--extra-index-url "$TORCH" torch) ;; *) TORCH_ARGS=("$TORCH") ;; esac
"$VENV/bin/pip" install --quiet "${TORCH_ARGS[@]}" -r <("$VENV/bin/python" "$ROOT/installer/runtime_requirements.py" "$ROOT") \
    "pyinstaller==6.22.3"
VERSION="$("$VENV/bin/python" -c "import sys; sys.path.insert(0, '$ROOT'); import pneumodesk; print(pneumodesk.__version__)")"
"$VENV/bin/python" -m PyInstaller --noconfirm --distpath "$OUT/dist" --workpath "$OUT/work" "$ROOT/installer/pneumodesk.spec"
"$VENV/bin/python" "$ROOT/installer/sbom.py" supplement --bundle "$OUT/dist/pneumodesk" --root "$ROOT" --out "$OUT/sbom"

# Payload: /Applications/PneumoDesk (the one-folder bundle; `pneumodesk-desktop` is the app, `pneumodesk` the CLI).
PAYLOAD="$OUT/macos-root"
rm -rf "$PAYLOAD"; mkdir -p "$PAYLOAD/Applications"
cp -R "$OUT/dist/pneumodesk" "$PAYLOAD/Applications/PneumoDesk"
printf '{"machine_home": "/Library/Application Support/PneumoDesk"}\n' > "$PAYLOAD/Applications/PneumoDesk/install.json"

# postinstall: the machine-wide node home, shared by the `pneumodesk` group (as on Linux: setgid, 2770).
SCRIPTS="$OUT/macos-scripts"; rm -rf "$SCRIPTS"; mkdir -p "$SCRIPTS"
cat > "$SCRIPTS/postinstall" <<'POST'
#!/bin/sh
if ! dscl . -read /Groups/pneumodesk >/dev/null 2>&1; then
    dseditgroup -o create -r "PneumoDesk users" pneumodesk
fi
install -d -o root -g pneumodesk -m 2770 "/Library/Application Support/PneumoDesk"
ln -sf /Applications/PneumoDesk/pneumodesk /usr/local/bin/pneumodesk
exit 0
POST
chmod +x "$SCRIPTS/postinstall"

pkgbuild --root "$PAYLOAD" --scripts "$SCRIPTS" --identifier org.pneumodesk.app --version "$VERSION" \
    --install-location / "$OUT/pneumodesk-component.pkg"
productbuild --package "$OUT/pneumodesk-component.pkg" "$OUT/PneumoDesk-$VERSION.pkg"
# Signing and notarisation (not done: no Developer ID): productsign --sign "Developer ID Installer: …", then
# xcrun notarytool submit … --wait and xcrun stapler staple.
echo "Built $OUT/PneumoDesk-$VERSION.pkg (unsigned)"
