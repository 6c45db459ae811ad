"""A run's provenance as an RO-Crate (Process Run Crate profile), zipped with its outputs.

The zip holds ``ro-crate-metadata.json`` and the files it describes:

- ``notebook/<name>.ipynb``: the notebook as it was run (the version asked for),
  the action's *instrument*;
- ``outputs/<name>.ipynb``: the executed notebook, and ``outputs/report.html``,
  the action's *result* (whatever exists: a failed run keeps its partial output);

and one ``CreateAction`` for the run: its agent (the user), start and end times,
status (``actionStatus``, and ``error`` on failure) and parameters (``object``:
one ``PropertyValue`` each, the value as JSON). See
https://www.researchobject.org/workflow-run-crate/profiles/process_run_crate/.

Written with :mod:`json` directly: the metadata is one small document.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

from gilhub.runs.query import Run

RO_CRATE = "https://w3id.org/ro/crate/1.1"
PROCESS_RUN_CRATE = "https://w3id.org/ro/wfrun/process/0.5"
METADATA_FILE = "ro-crate-metadata.json"
REPORT_FILE = "outputs/report.html"
_ACTION_STATUS = {
    "queued": "PotentialActionStatus",
    "running": "ActiveActionStatus",
    "completed": "CompletedActionStatus",
    "failed": "FailedActionStatus",
    "cancelled": "FailedActionStatus",
}


@dataclass(frozen=True)
class RunFiles:
    """What a crate carries besides its metadata."""

    notebook: bytes
    output: bytes | None
    report: str | None


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def metadata(run: Run, user_name: str, hub_url: str, files: RunFiles) -> dict[str, Any]:
    """The crate's ``ro-crate-metadata.json`` as a JSON object."""
    notebook_id = f"notebook/{_name(run.notebook)}"
    results: list[dict[str, Any]] = []
    if files.output is not None and run.output_path:
        results.append(
            {
                "@id": f"outputs/{_name(run.output_path)}",
                "@type": "File",
                "name": run.output_path,
                "description": "The executed notebook, in the user's storage at this path.",
                "encodingFormat": "application/x-ipynb+json",
                "contentSize": str(len(files.output)),
            }
        )
    if files.report is not None:
        results.append(
            {
                "@id": REPORT_FILE,
                "@type": "File",
                "name": "HTML report",
                "encodingFormat": "text/html",
            }
        )
    parameters = [
        {
            "@id": f"#parameter-{name}",
            "@type": "PropertyValue",
            "name": name,
            "value": json.dumps(value),
        }
        for name, value in run.parameters.items()
    ]
    agent_id = f"{hub_url.rstrip('/')}/hub/users/{user_name}"
    action: dict[str, Any] = {
        "@id": f"#run-{run.id}",
        "@type": "CreateAction",
        "name": f"Run {run.id} of {run.notebook}",
        "instrument": {"@id": notebook_id},
        "agent": {"@id": agent_id},
        "object": [{"@id": parameter["@id"]} for parameter in parameters],
        "result": [{"@id": result["@id"]} for result in results],
        "actionStatus": f"http://schema.org/{_ACTION_STATUS[run.status]}",
    }
    if run.started:
        action["startTime"] = run.started.isoformat()
    if run.ended:
        action["endTime"] = run.ended.isoformat()
    if run.error_ename or run.error_evalue:
        action["error"] = f"{run.error_ename}: {run.error_evalue}"
    notebook = {
        "@id": notebook_id,
        "@type": ["File", "SoftwareSourceCode"],
        "name": run.notebook,
        "encodingFormat": "application/x-ipynb+json",
        "description": f"From the user's {run.source}"
        + (f", version {run.version}" if run.version is not None else "")
        + f"; kernel {run.kernel}.",
    }
    if run.version is not None:
        notebook["version"] = str(run.version)
    root = {
        "@id": "./",
        "@type": "Dataset",
        "name": f"Run {run.id} of {run.notebook}",
        "conformsTo": {"@id": PROCESS_RUN_CRATE},
        "datePublished": (run.ended or run.created).isoformat(),
        "hasPart": [{"@id": notebook_id}, *({"@id": r["@id"]} for r in results)],
        "mentions": {"@id": action["@id"]},
    }
    graph = [
        {
            "@id": METADATA_FILE,
            "@type": "CreativeWork",
            "conformsTo": {"@id": RO_CRATE},
            "about": {"@id": "./"},
        },
        root,
        {"@id": PROCESS_RUN_CRATE, "@type": "CreativeWork", "name": "Process Run Crate"},
        action,
        notebook,
        *results,
        *parameters,
        {"@id": agent_id, "@type": "Person", "name": user_name},
    ]
    return {"@context": "https://w3id.org/ro/crate/1.1/context", "@graph": graph}


def crate_zip(run: Run, user_name: str, hub_url: str, files: RunFiles) -> bytes:
    """The zipped crate (CPU-bound: call it in a thread)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        described = metadata(run, user_name, hub_url, files)
        archive.writestr(METADATA_FILE, json.dumps(described, indent=2))
        archive.writestr(f"notebook/{_name(run.notebook)}", files.notebook)
        if files.output is not None and run.output_path:
            archive.writestr(f"outputs/{_name(run.output_path)}", files.output)
        if files.report is not None:
            archive.writestr(REPORT_FILE, files.report)
    return buffer.getvalue()
