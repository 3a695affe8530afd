"""A clinical note's SOAP content as Composition sections, and back.

Each part of the note (subjective, objective, assessment, plan) is a section; each field
of it a sub-section coded in the layer's own system (``subjective.chief_complaint``) with
its value as the narrative: text as text, lists of text as ``<ul>`` items, anything else
(vital signs, examination findings, results) as JSON in a ``<pre>``. Reading a section
back gives the value that was written, so a note survives export and import unchanged.
Sections of other systems are read where a LOINC or SNOMED code names a SOAP text field,
and free-text notes (a ``DocumentReference`` attachment) are kept whole as the note's
raw text, with their headed parts (``# Chief Complaint``) filled into the fields they name.
A field the note model cannot hold (a list item over its length, too many items, a vital
sign out of range) is left out by ``fitting``: the rest of the note is kept.
"""

from __future__ import annotations

import json
import re
from html import escape
from html.parser import HTMLParser
from typing import Any

from ..documents.clinical_note import MAX_NOTE_BYTES, NoteContent
from ..documents.validation import embed, validate
from ..errors import ValidationError
from .codes import LOINC, NOTE_SECTION_SYSTEM, SNOMED

XHTML = "http://www.w3.org/1999/xhtml"
PARTS = ("subjective", "objective", "assessment", "plan")
TRANSCRIPT = "transcript"
TEXT, LIST, JSON = "text", "list", "json"
FIELDS: dict[str, dict[str, str]] = {
    "subjective": {
        "chief_complaint": TEXT,
        "history_of_present_illness": TEXT,
        "review_of_systems": JSON,
        "past_medical_history": TEXT,
        "medications": LIST,
        "allergies": LIST,
        "family_history": TEXT,
        "social_history": TEXT,
    },
    "objective": {
        "vital_signs": JSON,
        "physical_exam": JSON,
        "lab_results": JSON,
        "imaging_results": JSON,
    },
    "assessment": {"diagnoses": LIST, "differential_diagnoses": LIST, "clinical_impression": TEXT},
    "plan": {
        "diagnostics": LIST,
        "treatments": LIST,
        "medications": LIST,
        "patient_education": LIST,
        "follow_up": TEXT,
        "referrals": LIST,
    },
}
FOREIGN_SECTIONS = {  # (system, code) -> (part, field) of other systems' section codes
    (LOINC, "10154-3"): ("subjective", "chief_complaint"),
    (SNOMED, "422843007"): ("subjective", "chief_complaint"),
    (LOINC, "10164-2"): ("subjective", "history_of_present_illness"),
    (LOINC, "11348-0"): ("subjective", "past_medical_history"),
    (SNOMED, "371529009"): ("subjective", "past_medical_history"),
    (LOINC, "10157-6"): ("subjective", "family_history"),
    (LOINC, "29762-2"): ("subjective", "social_history"),
    (LOINC, "51848-0"): ("assessment", "clinical_impression"),
    (LOINC, "18776-5"): ("plan", "follow_up"),
    (SNOMED, "390906007"): ("plan", "follow_up"),
}
HEADINGS = {  # free-text headings -> (part, field)
    "chief complaint": ("subjective", "chief_complaint"),
    "history of present illness": ("subjective", "history_of_present_illness"),
    "past medical history": ("subjective", "past_medical_history"),
    "family history": ("subjective", "family_history"),
    "social history": ("subjective", "social_history"),
    "allergies": ("subjective", "allergies"),
    "medications": ("subjective", "medications"),
    "assessment": ("assessment", "clinical_impression"),
    "assessment and plan": ("assessment", "clinical_impression"),
    "plan": ("plan", "treatments"),
    "follow up": ("plan", "follow_up"),
    "follow-up": ("plan", "follow_up"),
}
_HEADING = re.compile(r"^#{1,6}\s*(.+?)\s*#*\s*$")
_ITEMS = re.compile(r"[,;] ")
"""What separates the items of a list on one line (``aspirin, mold``; ``a 5 mg tablet; b``)."""


def sections(content: dict[str, Any], transcript: str | None = None) -> list[dict[str, Any]]:
    """The Composition sections of a note's ``content`` (as ``to_mongo`` gives it);
    ``transcript`` (the raw text) as a last section when given."""
    result = []
    for part in PARTS:
        values = content.get(part) or {}
        subsections = [
            {
                "title": name.replace("_", " ").capitalize(),
                "code": _code(f"{part}.{name}"),
                "text": narrative(values[name], kind),
            }
            for name, kind in FIELDS[part].items()
            if values.get(name) not in (None, "", [], {})
        ]
        if subsections:
            result.append({"title": part.capitalize(), "code": _code(part), "section": subsections})
    if transcript:
        result.append(
            {"title": "Transcript", "code": _code(TRANSCRIPT), "text": narrative(transcript, TEXT)}
        )
    return result


def narrative(value: Any, kind: str) -> dict[str, str]:
    if kind == TEXT:
        body = escape(value, quote=False)
    elif kind == LIST:
        body = "<ul>" + "".join(f"<li>{escape(item, quote=False)}</li>" for item in value) + "</ul>"
    else:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
        body = f"<pre>{escape(text, quote=False)}</pre>"
    return {"status": "generated", "div": f'<div xmlns="{XHTML}">{body}</div>'}


def content_of(
    section_list: list[dict[str, Any]],
) -> tuple[dict[str, Any], str | None, dict[str, str]]:
    """The note content and raw text of Composition sections (JSON, as the resource has
    them), and the section each field came from (``{"subjective.medications":
    "section[0].section[4]"}``). Sections this reads nothing from are left out."""
    content: dict[str, dict[str, Any]] = {}
    transcript = None
    places: dict[str, str] = {}
    for path, section in _flattened(section_list, "section"):
        div = (section.get("text") or {}).get("div")
        if not isinstance(div, str):
            continue
        place = _place(section)
        if place == TRANSCRIPT:
            transcript = _Text.of(div).text
            continue
        if not isinstance(place, tuple):
            continue
        part, name = place
        kind = FIELDS[part][name]
        parsed = _Text.of(div)
        value: Any = parsed.items if kind == LIST else parsed.text
        if kind == JSON:
            value = _json(value)
        if value not in (None, "", []):
            content.setdefault(part, {})[name] = value
            places[f"{part}.{name}"] = path
    return content, transcript, places


def content_of_text(text: str) -> dict[str, Any]:
    """The fields a free-text note's headed parts name (``# Chief Complaint`` ...)."""
    content: dict[str, dict[str, Any]] = {}
    place: tuple[str, str] | None = None
    lines: list[str] = []

    def keep() -> None:
        if place is None:
            return
        part, name = place
        body = [line.strip() for line in lines if line.strip()]
        if not body:
            return
        if FIELDS[part][name] == LIST:
            items = [line.removeprefix("- ").strip() for line in body]
            value: Any = [item for chunk in items for item in _ITEMS.split(chunk) if item]
        else:
            value = "\n".join(body)
        content.setdefault(part, {})[name] = value

    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading is None:
            lines.append(line)
            continue
        keep()
        place, lines = HEADINGS.get(heading.group(1).lower()), []
    keep()
    return content


def fitting(content: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``content`` without the fields the note model refuses, and those fields' names
    (``subjective.medications``), each checked on its own as a note's content is."""
    kept: dict[str, dict[str, Any]] = {}
    refused = []
    for part, values in content.items():
        for name, value in values.items():
            try:
                one = embed(NoteContent, {part: {name: value}}, "content")
                validate(one, max_bytes=MAX_NOTE_BYTES, name="content")
            except ValidationError:
                refused.append(f"{part}.{name}")
            else:
                kept.setdefault(part, {})[name] = value
    return kept, refused


def _code(code: str) -> dict[str, Any]:
    return {"coding": [{"system": NOTE_SECTION_SYSTEM, "code": code}]}


def _flattened(section_list: list[dict[str, Any]], path: str) -> list[tuple[str, dict[str, Any]]]:
    """Every section and sub-section, with its path (``section[0].section[4]``)."""
    found = []
    for index, section in enumerate(section_list):
        if not isinstance(section, dict):
            continue
        here = f"{path}[{index}]"
        found.append((here, section))
        found.extend(_flattened(section.get("section") or [], f"{here}.section"))
    return found


def _place(section: dict[str, Any]) -> tuple[str, str] | str | None:
    for coding in (section.get("code") or {}).get("coding") or []:
        system, code = coding.get("system"), coding.get("code")
        if system == NOTE_SECTION_SYSTEM and isinstance(code, str):
            if code == TRANSCRIPT:
                return TRANSCRIPT
            part, _, name = code.partition(".")
            if name in FIELDS.get(part, {}):
                return part, name
        elif (system, code) in FOREIGN_SECTIONS:
            return FOREIGN_SECTIONS[(system, code)]
    return None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


class _Text(HTMLParser):
    """The text of an XHTML narrative and its list items; markup is dropped, never run."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.items: list[str] = []
        self._item: list[str] | None = None

    @classmethod
    def of(cls, div: str) -> _Text:
        parser = cls()
        parser.feed(div)
        parser.close()
        return parser

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "li":
            self._item = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "li" and self._item is not None:
            self.items.append("".join(self._item))
            self._item = None

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        if self._item is not None:
            self._item.append(data)
