<#
.SYNOPSIS
    Run gilhub as a Windows service with NSSM, or (without NSSM) as a scheduled
    task that starts at boot. Run from an elevated PowerShell, after
    start-gilhub.ps1 has created .\venv once.

.EXAMPLE
    .\install-service.ps1 -Ip 0.0.0.0 -Port 8000
    .\install-service.ps1 -UseScheduledTask
    .\install-service.ps1 -Remove
#>
param(
    [string]$Name = "gilhub",
    [string]$Ip = "127.0.0.1",
    [int]$Port = 8000,
    [string]$DataDir = (Join-Path $env:ProgramData "gilhub"),
    [string]$Nssm = "nssm.exe",
    [switch]$UseScheduledTask,
    [switch]$Remove
)
$ErrorActionPreference = "Stop"

$python = Join-Path $PSScriptRoot "venv\Scripts\python.exe"
$arguments = "-m gilhub --ip=$Ip --port=$Port --data-dir=`"$DataDir`""
$logs = Join-Path $DataDir "logs"

function Test-Nssm { return [bool](Get-Command $Nssm -ErrorAction SilentlyContinue) }

if ($Remove) {
    if (Get-ScheduledTask -TaskName $Name -ErrorAction SilentlyContinue) {
        Unregister-ScheduledTask -TaskName $Name -Confirm:$false
    }
    if ((Test-Nssm) -and (Get-Service -Name $Name -ErrorAction SilentlyContinue)) {
        & $Nssm stop $Name
        & $Nssm remove $Name confirm
    }
    return
}

if (-not (Test-Path $python)) { throw "run start-gilhub.ps1 once first: $python is missing" }
New-Item -ItemType Directory -Force -Path $logs | Out-Null
# The service account (LocalService) must own the data directory's contents.
& icacls $DataDir /grant:r "*S-1-5-19:(OI)(CI)F" | Out-Null

if ($UseScheduledTask -or -not (Test-Nssm)) {
    if (-not $UseScheduledTask) { Write-Warning "nssm.exe not found: registering a scheduled task instead" }
    # Built into Windows, no extra software: starts at boot, restarts on failure.
    $action = New-ScheduledTaskAction -Execute $python -Argument $arguments -WorkingDirectory $DataDir
    $trigger = New-ScheduledTaskTrigger -AtStartup
    $settings = New-ScheduledTaskSettingsSet -RestartCount 999 -RestartInterval (New-TimeSpan -Minutes 1) `
        -ExecutionTimeLimit ([TimeSpan]::Zero) -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries
    $principal = New-ScheduledTaskPrincipal -UserId "NT AUTHORITY\LocalService" -LogonType ServiceAccount
    Register-ScheduledTask -TaskName $Name -Action $action -Trigger $trigger -Settings $settings `
        -Principal $principal -Force | Out-Null
    Start-ScheduledTask -TaskName $Name
    Write-Host "gilhub runs as the scheduled task '$Name' (account LocalService)."
    return
}

& $Nssm install $Name $python $arguments
& $Nssm set $Name AppDirectory $DataDir
& $Nssm set $Name DisplayName "gilhub notebook hub"
& $Nssm set $Name Start SERVICE_AUTO_START
& $Nssm set $Name ObjectName "NT AUTHORITY\LocalService"
& $Nssm set $Name AppStdout (Join-Path $logs "hub.log")
& $Nssm set $Name AppStderr (Join-Path $logs "hub.log")
& $Nssm set $Name AppRotateFiles 1
& $Nssm set $Name AppRotateBytes 10485760
# Stop with Ctrl-C first, so the hub shuts down cleanly.
& $Nssm set $Name AppStopMethodSkip 0
& $Nssm set $Name AppStopMethodConsole 15000
# Leave the users' servers running when the hub restarts: the new hub re-adopts them.
& $Nssm set $Name AppKillProcessTree 0
& $Nssm start $Name
Write-Host "gilhub runs as the Windows service '$Name' (account LocalService)."
