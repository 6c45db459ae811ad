<#
.SYNOPSIS
    Install gilhub into a virtual environment (first run only) and start it.

.DESCRIPTION
    The virtual environment lives in .\venv beside this script; the hub's data
    (embedded PostgreSQL, logs, user scratch directories) in -DataDir.
    Run it again to start the hub; pass -Upgrade to update gilhub first.

.EXAMPLE
    powershell -ExecutionPolicy Bypass -File start-gilhub.ps1
    powershell -ExecutionPolicy Bypass -File start-gilhub.ps1 -Ip 0.0.0.0 -Port 8000
#>
param(
    [string]$Ip = "127.0.0.1",
    [int]$Port = 8000,
    [string]$DataDir = (Join-Path $env:ProgramData "gilhub"),
    [string]$Package = "gilhub",
    [switch]$Upgrade
)
$ErrorActionPreference = "Stop"

$venv = Join-Path $PSScriptRoot "venv"
$python = Join-Path $venv "Scripts\python.exe"

if (-not (Test-Path $python)) {
    Write-Host "Creating the virtual environment in $venv"
    & py -3 -m venv $venv
    if ($LASTEXITCODE -ne 0) { throw "could not create a virtual environment (is Python 3.10+ installed?)" }
    $Upgrade = $true
}
if ($Upgrade) {
    & $python -m pip install --upgrade pip
    & $python -m pip install --upgrade $Package
    if ($LASTEXITCODE -ne 0) { throw "could not install $Package" }
}

New-Item -ItemType Directory -Force -Path $DataDir | Out-Null
# Only this account (and administrators) may read the hub's data: it holds the
# database password and every user's notebooks.
& icacls $DataDir /inheritance:r /grant:r "${env:USERNAME}:(OI)(CI)F" "*S-1-5-32-544:(OI)(CI)F" "*S-1-5-18:(OI)(CI)F" | Out-Null

& $python -m gilhub "--ip=$Ip" "--port=$Port" "--data-dir=$DataDir"
exit $LASTEXITCODE
