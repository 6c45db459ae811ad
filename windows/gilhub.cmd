@echo off
rem Start gilhub from the virtual environment beside this script (made by start-gilhub.ps1).
rem Every argument is passed on, e.g.:  gilhub.cmd --ip=0.0.0.0 --port=8000
setlocal
set "GILHUB_HOME=%~dp0"
if exist "%GILHUB_HOME%venv\Scripts\python.exe" (
    "%GILHUB_HOME%venv\Scripts\python.exe" -m gilhub %*
) else (
    python -m gilhub %*
)
exit /b %ERRORLEVEL%
