"""The asking rules, alone: no database, no clock."""

from __future__ import annotations

from gilhub.activity.rules import (
    REASON_CHANGED,
    REASON_END,
    REASON_FIXED,
    Ask,
    CellHistory,
    Rules,
    Run,
    continuous_asks,
    continuous_reason,
    end_asks,
    source_changes,
)

CONTINUOUS = Rules(mode="continuous", changes_before_asking=3, prompts_per_hour=2, cells_at_end=2)


def runs(*spec: str) -> tuple[Run, ...]:
    """``"a"`` is a successful run of version a, ``"a!"`` a failed one."""
    return tuple(Run(s.rstrip("!"), "error" if s.endswith("!") else "ok") for s in spec)


def cell(*spec: str, cell_id: str = "c1", path: str = "x.ipynb", asked: str = "") -> CellHistory:
    return CellHistory(path, cell_id, runs(*spec), frozenset(asked))


def test_source_changes_count_each_run_whose_source_differs_from_the_run_before() -> None:
    assert source_changes(runs()) == 0
    assert source_changes(runs("a", "a", "a")) == 0
    assert source_changes(runs("a", "b", "b", "a", "c")) == 3


def test_a_cell_run_once_or_unchanged_is_never_asked_about() -> None:
    assert continuous_reason(cell("a"), 1) is None
    assert continuous_reason(cell("a", "a", "a", "a"), 1) is None


def test_a_cell_is_asked_about_when_run_after_n_source_changes() -> None:
    assert continuous_reason(cell("a", "b", "c"), 3) is None
    assert continuous_reason(cell("a", "b", "c", "d"), 3) == REASON_CHANGED
    # run again, unchanged, after the third change: still worth asking
    assert continuous_reason(cell("a", "b", "c", "d", "d"), 3) == REASON_CHANGED


def test_changes_are_counted_again_from_the_version_last_asked_about() -> None:
    assert continuous_reason(cell("a", "b", "c", "d", "e", asked="d"), 3) is None
    assert continuous_reason(cell("a", "b", "c", "d", "e", "f", "g", asked="d"), 3) == (
        REASON_CHANGED
    )


def test_a_version_is_asked_about_at_most_once() -> None:
    assert continuous_reason(cell("a", "b", "c", "d", asked="d"), 3) is None
    assert continuous_reason(cell("a!", "b", asked="b"), 3) is None


def test_an_error_followed_by_a_fix_is_asked_about() -> None:
    assert continuous_reason(cell("a!", "b"), 3) == REASON_FIXED
    assert continuous_reason(cell("a", "b!", "c"), 9) == REASON_FIXED


def test_an_error_that_went_away_without_a_change_is_no_fix() -> None:
    assert continuous_reason(cell("a!", "a"), 3) is None  # flaky, or state changed elsewhere
    assert continuous_reason(cell("a!", "b!"), 3) is None  # still failing
    assert continuous_reason(cell("a!", "b", "b"), 3) is None  # a re-run after the fix


def test_continuous_mode_asks_about_the_cells_just_run_in_order() -> None:
    cells = [cell("a!", "b", cell_id="first"), cell("a", cell_id="second")]
    assert continuous_asks(cells, CONTINUOUS, asked_last_hour=0) == [
        Ask("x.ipynb", "first", "b", REASON_FIXED)
    ]


def test_continuous_mode_asks_at_most_k_times_an_hour() -> None:
    cells = [cell("a!", "b", cell_id=f"c{n}") for n in range(5)]
    assert len(continuous_asks(cells, CONTINUOUS, asked_last_hour=0)) == 2
    assert len(continuous_asks(cells, CONTINUOUS, asked_last_hour=1)) == 1
    assert continuous_asks(cells, CONTINUOUS, asked_last_hour=2) == []
    assert continuous_asks(cells, CONTINUOUS, asked_last_hour=7) == []


def test_continuous_mode_never_asks_in_a_silenced_notebook() -> None:
    cells = [cell("a!", "b", path="quiet.ipynb"), cell("a!", "b", path="loud.ipynb")]
    asks = continuous_asks(
        cells, CONTINUOUS, asked_last_hour=0, quiet_paths=frozenset({"quiet.ipynb"})
    )
    assert [ask.path for ask in asks] == ["loud.ipynb"]


def test_other_modes_never_ask_while_working() -> None:
    cells = [cell("a!", "b")]
    for mode in ("end", "off"):
        assert continuous_asks(cells, Rules(mode=mode), asked_last_hour=0) == []


def test_end_mode_asks_about_the_latest_version_of_the_cells_that_changed_most() -> None:
    cells = [
        cell("a", "b", cell_id="once"),
        cell("a", "b", "c", "d", cell_id="thrice"),
        cell("a", "a", "a", cell_id="never"),
        cell("a", "b", "c", cell_id="twice"),
    ]
    assert end_asks(cells, CONTINUOUS) == [
        Ask("x.ipynb", "thrice", "d", REASON_END),
        Ask("x.ipynb", "twice", "c", REASON_END),
    ]


def test_end_mode_prefers_cells_that_failed_more_among_equal_changes_then_notebook_order() -> None:
    cells = [
        cell("a", "b", cell_id="first"),
        cell("a", "b!", "b", cell_id="failed"),
        cell("a", "b", cell_id="third"),
    ]
    assert [ask.cell_id for ask in end_asks(cells, CONTINUOUS)] == ["failed", "first"]


def test_end_mode_skips_versions_asked_about_and_silenced_notebooks_but_not_off() -> None:
    cells = [cell("a", "b", asked="b", cell_id="asked"), cell("a", "b", cell_id="fresh")]
    assert [ask.cell_id for ask in end_asks(cells, Rules(mode="end"))] == ["fresh"]
    silenced = frozenset({"x.ipynb"})
    assert end_asks(cells, Rules(mode="end"), quiet_paths=silenced) == []
    assert end_asks(cells, Rules(mode="off")) == []


def test_versions_asked_about_only_ever_remove_questions() -> None:
    """What lets a server skip reading earlier questions when the runs alone ask nothing."""
    histories = ["a b c d", "a! b", "a b! c", "a b c d e f", "a a b b c", "a! b! c d"]
    for spec in histories:
        runs_ = spec.split()
        versions = {run.rstrip("!") for run in runs_}
        for asked in [""] + sorted(versions) + ["".join(sorted(versions))]:
            with_asked = continuous_reason(cell(*runs_, asked=asked), 2)
            if with_asked is not None:
                assert continuous_reason(cell(*runs_), 2) is not None, (spec, asked)
