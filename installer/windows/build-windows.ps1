# Build PneumoDesk's MSI on a Windows build machine (x64, Python 3.11 from python.org, WiX Toolset 3.14 on PATH:
# heat.exe, candle.exe, light.exe).  NOT RUN by the project's CI (no Windows machine): see README, "Installing on
# workstations".  Usage, from the checkout's root in PowerShell:
#     powershell -ExecutionPolicy Bypass -File installer\windows\build-windows.ps1 -Torch https://download.pytorch.org/whl/cpu
# -Torch: a CPU-only torch wheel file (torch-*+cpu-cp311-*win_amd64.whl) or the CPU wheel index URL.
# Output: build\installer\PneumoDesk-<version>-x64.msi (unsigned unless -SignCert names a code-signing certificate).
param(
    [Parameter(Mandatory = $true)][string]$Torch,
    [string]$Python = "py -3.11",
    [string]$SignCert = ""
)
$ErrorActionPreference = "Stop"
$Root = (Resolve-Path "$PSScriptRoot\..\..").Path
$Out = "$Root\build\installer"
$Venv = "$Root\build\installer-venv"
New-Item -ItemType Directory -Force -Path $Out | Out-Null

if ($Torch -match '^https?://') { $TorchArgs = @("--extra-index-url", $Torch, "torch") }
elseif (Test-Path $Torch) { $TorchArgs = @($Torch) }
else { throw "No CPU-only torch: pass a wheel file or https://download.pytorch.org/whl/cpu (got '$Torch')" }

# 1. The build venv: CPU torch, the runtime requirements only (no dev tools, no coordinator server), PyInstaller.
if (-not (Test-Path "$Venv\Scripts\python.exe")) { & cmd /c "$Python -m venv `"$Venv`"" }
$Py = "$Venv\Scripts\python.exe"
& $Py "$Root\installer\runtime_requirements.py" "$Root" | Set-Content "$Out\runtime-requirements.txt"
& $Py -m pip install --quiet @TorchArgs -r "$Out\runtime-requirements.txt" "pyinstaller==6.22.3"
if ($LASTEXITCODE) { throw "pip install failed" }
& $Py -c "import torch, sys; sys.exit(torch.version.cuda is not None)"
if ($LASTEXITCODE) { throw "the build venv has a CUDA torch: pass a CPU-only wheel or index" }
$Version = (& $Py -c "import sys; sys.path.insert(0, r'$Root'); import pneumodesk; print(pneumodesk.__version__)").Trim()

# 2. Freeze (the same spec as Linux: one folder, pneumodesk.exe console CLI + pneumodesk-desktop.exe windowed).
& $Py -m PyInstaller --noconfirm --log-level WARN --distpath "$Out\dist" --workpath "$Out\work" "$Root\installer\pneumodesk.spec"
if ($LASTEXITCODE) { throw "PyInstaller failed" }
$Bundle = "$Out\dist\pneumodesk"
'{ "machine_home": "C:\\ProgramData\\PneumoDesk" }' | Set-Content -Encoding utf8 "$Bundle\install.json"
& $Py "$Root\installer\sbom.py" supplement --bundle $Bundle --root $Root --out "$Out\sbom"

# 3. The MSI: harvest the bundle into the BundleFiles component group, compile, link.
& heat.exe dir $Bundle -nologo -cg BundleFiles -dr INSTALLDIR -srd -sreg -gg -g1 -ag -var var.BundleDir -platform x64 `
    -out "$Out\bundle-files.wxs"
& candle.exe -nologo -arch x64 -dVersion=$Version -dWixl=no "-dBundleDir=$Bundle" -dWin64=yes -out "$Out\obj\" `
    "$Root\installer\windows\pneumodesk.wxs" "$Out\bundle-files.wxs"
& light.exe -nologo -spdb -out "$Out\PneumoDesk-$Version-x64.msi" "$Out\obj\pneumodesk.wixobj" "$Out\obj\bundle-files.wixobj"
if ($LASTEXITCODE) { throw "WiX failed" }

# 4. Signing (optional; the project has no certificate yet, so its MSIs are unsigned).
if ($SignCert) {
    & signtool.exe sign /fd SHA256 /tr http://timestamp.digicert.com /td SHA256 /n $SignCert "$Out\PneumoDesk-$Version-x64.msi"
}
Write-Host "Built $Out\PneumoDesk-$Version-x64.msi"
