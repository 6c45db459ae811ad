"""Writing to the bibliography: checked input, duplicates, locks, hand edits, the record."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gilhub.accounts import create_account
from gilhub.bibliography.library import Bibliography, parse_bibliography
from gilhub.bibliography.writer import BibInputError, BibWriter
from gilhub.users import User

NEW_ENTRY = """@article{bohr1913constitution,
  author  = {Bohr, Niels},
  title   = {On the Constitution of Atoms and Molecules},
  journal = {Philosophical Magazine},
  year    = {1913},
}
"""


@pytest.fixture(scope="module")
async def alice(engine: AsyncEngine) -> User:
    async with engine.begin() as conn:
        return await create_account(conn, "alice")


def writer_for(path: Path, engine: AsyncEngine | None = None) -> BibWriter:
    return BibWriter(Bibliography(path), engine)


async def test_paste_appends_keeping_the_file_text_and_records_who(bib_copy, engine, alice):
    before = bib_copy.read_bytes()
    result = await writer_for(bib_copy, engine).merge(NEW_ENTRY, alice, source="paste")
    assert result.added == ["bohr1913constitution"]
    after = bib_copy.read_bytes()
    assert after.startswith(before)  # text, comments, order and damaged entries all kept
    assert after[len(before) :].strip() == NEW_ENTRY.strip().encode()
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT user_name, action, source, entry_type FROM bibliography.changes"
                    " WHERE entry_key = 'bohr1913constitution'"
                )
            )
        ).one()
    assert tuple(row) == ("alice", "add", "paste", "article")


async def test_form_fields_are_checked_and_latex_is_kept(bib_copy, engine, alice):
    writer = writer_for(bib_copy, engine)
    with pytest.raises(BibInputError) as error:
        await writer.add_from_form(
            {
                "entry_type": "article",
                "key": "has space",
                "title": "Unbalanced {",
                "year": "19x5",
                "url": "javascript:alert(1)",
                "doi": "nope",
            },
            alice,
        )
    messages = " ".join(error.value.errors)
    for expected in (
        "key:",
        "author: required",
        "journal: required",
        "braces",
        "year:",
        "url:",
        "doi:",
    ):
        assert expected in messages
    before = bib_copy.read_bytes()
    with pytest.raises(BibInputError, match="already in the bibliography"):
        await writer.add_from_form(
            {
                "entry_type": "misc",
                "key": "Shannon1948Communication",
                "title": "Same key, other case",
            },
            alice,
        )
    assert bib_copy.read_bytes() == before
    await writer.add_from_form(
        {
            "entry_type": "misc",
            "key": "schrodinger1935cat",
            "author": 'Schr{\\"o}dinger, Erwin',
            "title": 'Die gegenw{\\"a}rtige Situation in der $\\psi$-Mechanik',
            "year": "1935",
        },
        alice,
    )
    entry = (await writer.bibliography.library()).entries["schrodinger1935cat"]
    assert entry.fields["title"] == 'Die gegenw{\\"a}rtige Situation in der $\\psi$-Mechanik'


@pytest.mark.parametrize(
    ("bibtex", "message"),
    [
        ("@article{x, title={unbalanced}", "could not be parsed"),
        ("@article{a, title={A}}\n@article{a, title={B}}", "duplicate key"),
        ("@article{with space, title={A}}", "cannot name"),
        ("@gadget{g1, title={A}}", "unknown entry type"),
        ("just some words", "no BibTeX entry"),
        (b"@misc{e, title={Caf\xe9}}", "not UTF-8"),
    ],
)
async def test_bad_input_is_refused_with_a_clear_error_and_nothing_written(
    bib_copy, bibtex, message
):
    before = bib_copy.read_bytes()
    with pytest.raises(BibInputError, match=message):
        await writer_for(bib_copy).merge(bibtex, None)
    assert bib_copy.read_bytes() == before


async def test_duplicates_are_reported_and_replaced_only_when_confirmed(bib_copy, engine, alice):
    writer = writer_for(bib_copy, engine)
    changed = "@article{higgs1964broken, author={Higgs, Peter W.}, title={Changed}, year={1964}}"
    upload = f"{changed}\n{NEW_ENTRY}"
    result = await writer.merge(upload, alice, source="upload")
    assert result.added == ["bohr1913constitution"]
    assert [d.key for d in result.conflicts] == ["higgs1964broken"]
    library = await writer.bibliography.library()
    assert library.entries["higgs1964broken"].fields["title"].startswith("Broken Symmetries")

    again = await writer.merge(
        upload, alice, source="upload", replace=frozenset({"higgs1964broken"})
    )
    assert again.replaced == ["higgs1964broken"] and again.unchanged == ["bohr1913constitution"]
    library = await writer.bibliography.library()
    assert library.entries["higgs1964broken"].fields["title"] == "Changed"
    content = bib_copy.read_text(encoding="utf-8")
    assert content.count("@article{higgs1964broken") == 1
    # the entries around it did not move
    assert content.index("@article{englert1964broken") < content.index("@article{higgs1964broken")
    assert content.index("@article{higgs1964broken") < content.index("@article{hohenberg1964")


async def test_two_people_adding_at_the_same_moment_are_both_kept(bib_copy, engine, alice):
    """Two writers (as two hub processes would have) on one file, twenty entries each."""
    first, second = writer_for(bib_copy, engine), writer_for(bib_copy, engine)
    entries = [f"@misc{{concurrent{i}, title={{Entry {i}}}}}" for i in range(40)]
    await asyncio.gather(
        *[(first if i % 2 else second).merge(entry, alice) for i, entry in enumerate(entries)]
    )
    library = parse_bibliography(bib_copy.read_bytes())
    assert {f"concurrent{i}" for i in range(40)} <= set(library.entries)


async def test_another_process_writing_at_the_same_time(bib_copy, tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio, sys
            from gilhub.bibliography.library import Bibliography
            from gilhub.bibliography.writer import BibWriter

            async def main():
                writer = BibWriter(Bibliography(sys.argv[1]))
                print("ready", flush=True)
                for i in range(40):
                    await writer.merge("@misc{other%d, title={Other}}" % i, None)

            asyncio.run(main())
            """
        )
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), str(bib_copy), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert await process.stdout.readline() == b"ready\n"
        writer = writer_for(bib_copy)
        for i in range(40):
            await writer.merge(f"@misc{{mine{i}, title={{Mine}}}}", None)
        assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    keys = set(parse_bibliography(bib_copy.read_bytes()).entries)
    assert {f"other{i}" for i in range(40)} | {f"mine{i}" for i in range(40)} <= keys


class HandEditArrives(BibWriter):
    """Someone saves the file in an editor just before the hub replaces it."""

    edited = False

    async def write_file(self, data: bytes, expected_sha256: str) -> bool:
        if not self.edited:
            self.edited = True
            with self.path.open("a", encoding="utf-8") as stream:
                stream.write("\n% fixed a typo by hand\n@misc{handedit1, title={By hand}}\n")
        return await super().write_file(data, expected_sha256)


async def test_a_hand_edit_during_a_submission_is_not_lost(bib_copy, engine, alice):
    writer = HandEditArrives(Bibliography(bib_copy), engine)
    result = await writer.merge(NEW_ENTRY, alice)
    assert result.added == ["bohr1913constitution"]
    content = bib_copy.read_text(encoding="utf-8")
    assert "% fixed a typo by hand" in content and "@misc{handedit1" in content
    assert content.index("handedit1") < content.index("bohr1913constitution")


async def test_appending_keeps_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "latin1.bib"
    original = b"@misc{old, title={Caf\xe9 au lait}}\n"
    path.write_bytes(original)
    await writer_for(path).merge(NEW_ENTRY, None)
    assert path.read_bytes().startswith(original)
    assert "bohr1913constitution" in parse_bibliography(path.read_bytes()).entries


async def test_a_missing_file_is_created_by_the_first_add(tmp_path):
    path = tmp_path / "new.bib"
    await writer_for(path).merge(NEW_ENTRY, None)
    assert list(parse_bibliography(path.read_bytes()).entries) == ["bohr1913constitution"]


async def test_string_macros_the_new_entries_use_come_along(bib_copy):
    writer = writer_for(bib_copy)
    await writer.merge(
        '@string{natphys = "Nature Physics"}\n@string{prl = "Physical Review Letters"}\n'
        "@article{macro2024, title={T}, journal=natphys, year={2024}}",
        None,
    )
    content = bib_copy.read_text(encoding="utf-8")
    assert content.count("@string{natphys") == 1 and content.count("@string{prl") == 1
    library = parse_bibliography(bib_copy.read_bytes())
    assert library.entries["macro2024"].fields["journal"] == "Nature Physics"
    with pytest.raises(BibInputError, match="@string prl"):
        await writer.merge(
            '@string{prl = "Pretty Random Letters"}\n@misc{other2024, journal=prl}', None
        )
