"""Parameters and file names, checked without a hub (pure functions)."""

from __future__ import annotations

import pytest

from gilhub.notebook_templates.errors import BadParameters, MissingParameter, TooLarge
from gilhub.notebook_templates.params import (
    MAX_NAME_COMPONENT,
    fill_name,
    filled_file_name,
    numbered_name,
    parse_params,
    placeholders,
    safe_component,
)


def test_params_are_a_json_object_of_identifiers():
    assert parse_params('{"a": 1, "b_2": [true, null]}') == {"a": 1, "b_2": [True, None]}
    assert parse_params(None) == parse_params("") == {}
    for text in ("[]", "1", '"x"', "null", '{"1a": 0}', '{"a b": 0}', '{"def": 0}', "{"):
        with pytest.raises(BadParameters):
            parse_params(text)
    with pytest.raises(BadParameters, match="unpaired surrogate"):
        parse_params('{"a": "\\ud800"}')
    with pytest.raises(BadParameters, match="not valid JSON"):
        parse_params("[" * 30_000)
    with pytest.raises(TooLarge):
        parse_params('{"a": "' + "é" * 40_000 + '"}')


def test_placeholders_are_plain_names():
    assert placeholders("Data_{measurement}_{created}.ipynb") == ["measurement", "created"]
    assert placeholders("no placeholders {{literal}}.ipynb") == []
    for bad in ("{a.__class__}", "{a[0]}", "{a!r}", "{a:>9}", "{}", "{0}", "{a", "a}"):
        with pytest.raises(BadParameters):
            placeholders(bad)


@pytest.mark.parametrize(
    ("value", "made"),
    [
        ("Experiment-12345", "Experiment-12345"),
        ("../../etc/passwd", "____etc_passwd"),
        ("..", "_"),
        ("a\\b\x00c\nd", "a_b_c_d"),
        ("  spaced  ", "spaced"),
        ("", "_"),
        (12, "12"),
        (True, "true"),
        ("Größe µm", "Größe µm"),
    ],
)
def test_values_are_made_safe_for_one_path_component(value, made):
    assert safe_component(value) == made


def test_long_values_are_cut_and_missing_ones_named():
    assert len(safe_component("x" * 10_000)) == MAX_NAME_COMPONENT
    with pytest.raises(MissingParameter, match="'b' is missing"):
        fill_name("{a}_{b}.ipynb", {"a": 1})
    assert filled_file_name("folder/{a}.ipynb", {"a": "x/y"}) == "x_y.ipynb"
    assert numbered_name("dir/name.ipynb", 3) == "dir/name-3.ipynb"
