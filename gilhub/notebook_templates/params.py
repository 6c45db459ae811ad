"""Parameters of a template request: parsing, checking, and filling ``{param}`` names.

Everything here is pure and synchronous. The parameters arrive as JSON text
(SampleDB's form field ``params``, a query string, or the API's body) and are
checked once, at the door, so that later steps can trust them: a JSON object
of at most :data:`MAX_PARAMS_BYTES`, whose names are identifiers and whose
values are JSON values papermill's translators can write as literals.

File names are filled with :class:`string.Formatter`'s parser only, so a
placeholder is a plain name and never an expression: ``{a.__class__}``,
``{a[0]}``, ``{a!r}`` and ``{a:>9}`` are refused, not evaluated.
"""

from __future__ import annotations

import json
import keyword
import re
import string
from pathlib import PurePosixPath
from typing import Any

from gilhub.notebook_templates.errors import BadParameters, MissingParameter, TooLarge

MAX_PARAMS_BYTES = 64 * 1024
MAX_DEPTH = 16
MAX_NAME_COMPONENT = 100  # characters a value may take in a file name
_INT64 = 2**63
_UNSAFE_IN_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")
_DOT_RUNS = re.compile(r"\.{2,}")

Params = dict[str, Any]


def parse_params(text: str | bytes | None) -> Params:
    """The parameters in ``text`` (JSON of an object); ``{}`` when absent."""
    if text is None or text == "" or text == b"":
        return {}
    if len(text.encode("utf-8") if isinstance(text, str) else text) > MAX_PARAMS_BYTES:
        raise TooLarge(f"the parameters are larger than {MAX_PARAMS_BYTES // 1024} KiB")
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise BadParameters(f"the parameters are not valid JSON: {error}") from None
    return check_params(value)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def check_params(value: Any) -> Params:
    """``value`` if it is a JSON object of well-named parameters, else :class:`BadParameters`."""
    if not isinstance(value, dict):
        raise BadParameters(
            f"the parameters must be a JSON object of names and values, not {_json_kind(value)}"
        )
    for name, item in value.items():
        check_name(name)
        _check_value(item, name, depth=1)
    return value


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise BadParameters(f"the parameter name {name!r} is not an identifier")
    return name


def _check_value(value: Any, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise BadParameters(f"the parameter {where} is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return
    if isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            raise BadParameters(f"the number in parameter {where} is too large")
    elif isinstance(value, str):
        _check_text(value, where)
    elif isinstance(value, list):
        for item in value:
            _check_value(item, where, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, where)
            _check_value(item, where, depth + 1)
    else:
        raise BadParameters(f"the parameter {where} is not a JSON value")


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadParameters(f"the parameter {where} holds an unpaired surrogate") from None


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    kinds = {list: "a list", str: "a string", int: "a number", float: "a number"}
    return kinds.get(type(value), "null")


def placeholders(name: str) -> list[str]:
    """The ``{param}`` names in ``name``, in order; :class:`BadParameters` for anything else."""
    found = []
    try:
        parsed = list(string.Formatter().parse(name))
    except ValueError as error:
        raise BadParameters(f"the file name {name!r} has a broken placeholder: {error}") from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise BadParameters(
                f"the file name {name!r} has a placeholder that is not a plain {{name}}: "
                f"{field!r}{' with !' + conversion if conversion else ''}"
                f"{' with :' + spec if spec else ''}"
            )
        found.append(field)
    return found


def safe_component(value: Any) -> str:
    """``value`` as text that stays inside one path component.

    Slashes, backslashes and control characters become ``_``, runs of dots
    one ``_``, and the result is at most :data:`MAX_NAME_COMPONENT` characters.
    """
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = _DOT_RUNS.sub("_", _UNSAFE_IN_NAME.sub("_", text)).strip()
    return text[:MAX_NAME_COMPONENT].strip() or "_"


def fill_name(name: str, params: Params) -> str:
    """``name`` with each ``{param}`` replaced by its value made safe for a file name."""
    pieces = []
    for literal, field, _spec, _conversion in string.Formatter().parse(name):
        pieces.append(literal)
        if field is None:
            continue
        if field not in params:
            raise MissingParameter(field, name)
        pieces.append(safe_component(params[field]))
    return "".join(pieces)


def filled_file_name(template_path: str, params: Params) -> str:
    """The file name an instance of ``template_path`` gets: its own name, filled."""
    name = PurePosixPath(template_path).name
    placeholders(name)
    return fill_name(name, params)


def numbered_name(path: str, number: int) -> str:
    """``a/b.ipynb`` -> ``a/b-1.ipynb``: the name offered instead of an existing file."""
    pure = PurePosixPath(path)
    return str(pure.with_name(f"{pure.stem}-{number}{pure.suffix}"))
