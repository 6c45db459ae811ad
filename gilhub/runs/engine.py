"""A papermill engine that reports each cell's progress and bounds its output.

papermill's :class:`~papermill.engines.NBClientEngine` runs the cells through
nbclient and calls a :class:`~papermill.engines.NotebookExecutionManager`'s hooks
(``cell_start``, ``cell_complete``, ``cell_exception``) around each one. Our
manager turns those hooks into :class:`Report` calls; the worker
(:mod:`.worker`) forwards them to the database. Positions are counted in the
user's notebook, so papermill's injected-parameters cell is not counted.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from nbformat import NotebookNode
from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

ENGINE_NAME = "gilhub"
INJECTED_TAG = "injected-parameters"


class Report(Protocol):
    """Where the engine sends what happens (called from papermill's thread)."""

    manager: NotebookExecutionManager | None

    def progress(self, **values: Any) -> None: ...

    def message(self, level: str, text: str) -> None: ...


def is_injected(cell: NotebookNode) -> bool:
    return INJECTED_TAG in cell.get("metadata", {}).get("tags", [])


def user_cell_number(nb: NotebookNode, index: int) -> int:
    """The position (0-based) in the user's notebook of cell ``index`` of the executed one."""
    return index - sum(1 for cell in nb.cells[:index] if is_injected(cell))


def bound_outputs(cell: NotebookNode, limit: int) -> int:
    """Keep at most ``limit`` bytes of ``cell``'s outputs (as JSON), noting what was dropped
    in a last stderr output; return the number of bytes dropped (0: nothing)."""
    outputs = cell.get("outputs", [])
    total = len(json.dumps(outputs))
    if total <= limit:
        return 0
    kept: list[Any] = []
    budget = limit
    for output in outputs:
        size = len(json.dumps(output))
        if size <= budget:
            kept.append(output)
            budget -= size
            continue
        if output.get("output_type") == "stream" and budget > 0:
            kept.append({**output, "text": output["text"][:budget]})
        break
    dropped = total - len(json.dumps(kept))
    kept.append(
        NotebookNode(
            output_type="stream",
            name="stderr",
            text=f"[gilhub: {dropped} bytes of output dropped: over the limit of {limit} bytes "
            "per cell]\n",
        )
    )
    cell.outputs = [NotebookNode(output) for output in kept]
    return dropped


class ReportingManager(NotebookExecutionManager):
    def __init__(self, nb: NotebookNode, *, report: Report, max_output_bytes: int, **kwargs):
        super().__init__(nb, **kwargs)
        self.report = report
        self.max_output_bytes = max_output_bytes
        self.cells_done = 0
        #: The failing cell's position in the user's notebook, once one failed.
        self.failed_cell: int | None = None

    def notebook_start(self, **kwargs: Any) -> None:
        super().notebook_start(**kwargs)
        total = sum(1 for cell in self.nb.cells if not is_injected(cell))
        self.report.progress(cells_total=total, cells_done=0)

    def cell_start(self, cell: NotebookNode, cell_index: int | None = None, **kwargs: Any) -> None:
        super().cell_start(cell, cell_index, **kwargs)
        if not is_injected(cell) and cell_index is not None:
            self.report.progress(current_cell=user_cell_number(self.nb, cell_index))

    def cell_exception(
        self, cell: NotebookNode, cell_index: int | None = None, **kwargs: Any
    ) -> None:
        super().cell_exception(cell, cell_index, **kwargs)
        if cell_index is not None:
            self.failed_cell = user_cell_number(self.nb, cell_index)

    def cell_complete(
        self, cell: NotebookNode, cell_index: int | None = None, **kwargs: Any
    ) -> None:
        dropped = bound_outputs(cell, self.max_output_bytes)
        if dropped and cell_index is not None:
            number = user_cell_number(self.nb, cell_index)
            self.report.message(
                "WARNING", f"Cell {number}: {dropped} bytes of output dropped (over the limit)."
            )
        super().cell_complete(cell, cell_index, **kwargs)
        if not is_injected(cell) and cell.metadata.papermill.get("status") != "failed":
            self.cells_done += 1
            self.report.progress(cells_done=self.cells_done)


class ReportingEngine(NBClientEngine):
    """papermill's nbclient engine with a :class:`ReportingManager` (``report=`` and
    ``max_output_bytes=`` are passed through ``papermill.execute_notebook``)."""

    @classmethod
    def execute_notebook(
        cls,
        nb: NotebookNode,
        kernel_name: str,
        output_path: str | None = None,
        progress_bar: bool = False,
        log_output: bool = False,
        autosave_cell_every: int = 30,
        *,
        report: Report,
        max_output_bytes: int,
        **kwargs: Any,
    ) -> NotebookNode:
        manager = ReportingManager(
            nb,
            report=report,
            max_output_bytes=max_output_bytes,
            output_path=output_path,
            progress_bar=False,
            log_output=log_output,
            autosave_cell_every=autosave_cell_every,
        )
        report.manager = manager
        manager.notebook_start()
        try:
            cls.execute_managed_notebook(manager, kernel_name, log_output=log_output, **kwargs)
        finally:
            manager.notebook_complete()
        return manager.nb


papermill_engines.register(ENGINE_NAME, ReportingEngine)
