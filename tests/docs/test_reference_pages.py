"""The reference pages are generated from the code (``docs/hooks/reference.py``): these
tests hold the generators to covering every column, document field, setting, command,
flag and error, so a new one cannot be left out of the documentation."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

import dr_assistant_data
from docs.hooks import reference
from dr_assistant_data.cli.main import _parser
from dr_assistant_data.environ import source_of
from dr_assistant_data.errors import DataLayerError
from dr_assistant_data.relational.base import Base
from dr_assistant_data.settings import Settings

PAGES = Path(__file__).parents[2] / "docs" / "reference"


def sections(markdown: str) -> dict[str, str]:
    """The generated Markdown cut at its ``###`` headings, by heading text."""
    found: dict[str, str] = {}
    for part in markdown.split("\n### ")[1:]:
        heading, _, body = part.partition("\n")
        found[heading.strip("`")] = body
    return found


def parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parser and all its sub-commands' parsers, however deep."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += parsers(sub)
    return found


def test_every_column_of_every_mapped_table_is_in_the_entities_reference():
    tables = sections(reference.entities())
    for mapper in Base.registry.mappers:
        section = tables[mapper.local_table.name]
        for attribute in mapper.column_attrs:
            assert f"| `{attribute.key}` |" in section, (mapper.local_table.name, attribute.key)


def test_every_field_of_every_document_is_in_the_entities_reference():
    collections = sections(reference.entities())
    documents = [
        kind.document for kind in reference._repositories().values() if hasattr(kind, "document")
    ]
    assert documents
    for document in documents:
        section = collections[document._meta["collection"]]
        for name in document._fields_ordered:
            assert f"| `{name}` |" in section, (document.__name__, name)


def test_every_settings_field_is_in_the_settings_reference_with_its_variable():
    rows = reference.settings().splitlines()
    for field in dataclasses.fields(Settings):
        variable = source_of(field).name
        assert any(f"| `{variable}`" in row and f"| `{field.name}` |" in row for row in rows), (
            field.name
        )


def test_every_setting_says_what_it_is_for():
    undocumented = [
        field.name for field in dataclasses.fields(Settings) if not source_of(field).doc
    ]
    assert undocumented == []


def test_every_command_and_sub_command_is_in_the_cli_reference_with_every_flag():
    commands = sections(reference.cli())
    for parser in parsers(_parser())[1:]:
        section = commands[parser.prog]
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            for name in action.option_strings or [action.metavar or action.dest]:
                assert f"`{name}`" in section, (parser.prog, name)


def test_every_argument_of_every_command_has_help():
    missing = [
        (parser.prog, action.dest)
        for parser in parsers(_parser())
        for action in reference.arguments(parser)
        if not action.help
    ]
    assert missing == []


def test_every_error_the_package_exports_is_in_the_errors_reference_with_its_meaning():
    errors = sections(reference.errors_reference())
    exported = [
        value
        for value in vars(dr_assistant_data).values()
        if isinstance(value, type) and issubclass(value, DataLayerError)
    ]
    assert len(exported) >= 8
    for error in exported:
        assert error.__doc__, error.__name__
        assert error.__doc__.split()[0] in errors[error.__name__], error.__name__


@pytest.mark.parametrize("name", sorted(reference.GENERATORS))
def test_each_reference_page_holds_the_marker_the_hook_fills(name):
    page = (PAGES / f"{name}.md").read_text()
    filled = reference.on_page_markdown(page, page=None, config=None, files=None)
    assert f"<!-- reference: {name} -->" in page
    assert "<!-- reference:" not in filled
    assert reference.GENERATORS[name]() in filled


def test_a_marker_naming_no_generator_fails_the_build():
    with pytest.raises(ValueError, match="no reference generator named 'fields'"):
        reference.on_page_markdown("<!-- reference: fields -->", page=None, config=None, files=None)
