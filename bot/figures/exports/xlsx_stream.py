"""XLSX written as it goes: a zip streamed without seeking, the sheet's XML one batch of rows at a time.

Python's zipfile writes to a stream that cannot seek by putting each entry's sizes and CRC in a data
descriptor after its data, so nothing is held but the compressor's window and the current batch. The
parts are as few as Excel needs: [Content_Types].xml, the package and workbook relationships, a
style sheet (a bold header) and the sheets. The content types come first (tools that sniff a file
look for them there) and name worksheets by default for every .xml part, since the number of sheets
is known only at the end; the workbook, which lists them, is written last.

Strings are inline (`t="inlineStr"`): a shared-string table would have to be held in memory and
written after the rows. Numbers are numbers, booleans booleans, an empty value no cell at all.

No entry uses ZIP64 unless it has to (Excel refuses a small file whose entries carry ZIP64 fields): a
sheet is closed and another begun before it reaches 4 GiB of XML, as before Excel's 1,048,576 rows.
The zip's central directory takes ZIP64 records by itself once offsets pass 4 GiB.

Text is cleaned to what a cell can hold: characters XML 1.0 forbids (control characters but tab, LF
and CR; lone surrogates; U+FFFE/U+FFFF) are removed, and it is cut at Excel's 32,767 characters
(UTF-16 units). A carriage return is written as a character reference, or XML parsing would turn
it into a line feed; an underscore that would start Excel's own escape (`_x000D_`) is escaped itself.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import IO

from bot.figures.exports.columns import Cell

CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_ROWS = 1_048_576  # Excel's rows per sheet, the header included
MAX_SHEET_BYTES = zipfile.ZIP64_LIMIT - 64 * 1024 * 1024  # the XML of one sheet, below ZIP64's threshold
MAX_CELL = 32_767  # characters (UTF-16 units) in one cell
_ILLEGAL = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_EXCEL_ESCAPE = re.compile(r"_(?=x[0-9A-Fa-f]{4}_)")

_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_CONTENT_TYPES = (
    _HEAD + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    "</Types>")
_ROOT_RELS = (
    _HEAD + f'<Relationships xmlns="{_PKG_REL_NS}">'
    f'<Relationship Id="rId1" Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
_STYLES = (
    _HEAD + f'<styleSheet xmlns="{_NS}">'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>")
_SHEET_START = (
    _HEAD + f'<worksheet xmlns="{_NS}" xmlns:r="{_REL_NS}">'
    '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" '
    'state="frozen"/></sheetView></sheetViews><sheetData>')
_SHEET_END = "</sheetData></worksheet>"


def clean(text: str) -> str:
    """The text as the cell will hold it: XML's forbidden characters out, cut at Excel's limit."""
    text = _ILLEGAL.sub("", text)
    if len(text) > MAX_CELL // 2 and len(text.encode("utf-16-le")) > 2 * MAX_CELL:
        units = 0
        for i, ch in enumerate(text):
            units += 2 if ord(ch) > 0xFFFF else 1
            if units > MAX_CELL:
                return text[:i]
    return text


def _escape(text: str) -> str:
    if "_x" in text:
        text = _EXCEL_ESCAPE.sub("_x005F_", text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\r", "&#13;") if "\r" in text else text


def column_letters(n: int) -> list[str]:
    """A, B, …, Z, AA, AB, … for the first n columns."""
    out = []
    for i in range(1, n + 1):
        name = ""
        while i:
            i, rest = divmod(i - 1, 26)
            name = chr(65 + rest) + name
        out.append(name)
    return out


class Sink:
    """Where the zip writes: bytes collected until the handler takes them for the response. It has no
    `tell` or `seek`, which is what makes zipfile stream (data descriptors) instead of seeking back."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


class XlsxStream:
    """`start()`, then `rows()` per batch, then `finish()`: each returns the bytes of the file ready so far."""

    content_type = CONTENT_TYPE
    extension = "xlsx"

    def __init__(self, sheet: str, header: Sequence[str], *, max_rows: int = MAX_ROWS,
                 max_sheet_bytes: int = MAX_SHEET_BYTES, compresslevel: int = 6,
                 created: datetime | None = None) -> None:
        self._name, self._header = sheet[:24], list(header)
        self._letters = column_letters(len(header))
        self._max_rows, self._max_bytes = max_rows, max_sheet_bytes
        self._stamp = (created or datetime.now()).timetuple()[:6]
        self._sink = Sink()
        self._zip = zipfile.ZipFile(self._sink, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel)
        self._sheets: list[str] = []
        self._entry: IO[bytes] | None = None
        self._row = 0  # the last row written in the current sheet
        self._bytes = 0

    def _write_part(self, name: str, text: str) -> None:
        self._zip.writestr(zipfile.ZipInfo(name, self._stamp), text.encode("utf-8"), zipfile.ZIP_DEFLATED)

    def _open_sheet(self) -> None:
        self._sheets.append(self._name if not self._sheets else f"{self._name} {len(self._sheets) + 1}")
        info = zipfile.ZipInfo(f"xl/worksheets/sheet{len(self._sheets)}.xml", self._stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        self._entry = self._zip.open(info, "w")
        self._row, self._bytes = 0, 0
        head = "".join((_SHEET_START, '<row r="1">', *(
            f'<c r="{c}1" s="1" t="inlineStr"><is><t>{_escape(clean(h))}</t></is></c>'
            for c, h in zip(self._letters, self._header, strict=True)), "</row>"))
        self._put(head)
        self._row = 1

    def _close_sheet(self) -> None:
        assert self._entry is not None
        self._put(_SHEET_END)
        self._entry.close()
        self._entry = None

    def _put(self, text: str) -> None:
        assert self._entry is not None
        data = text.encode("utf-8")
        self._entry.write(data)
        self._bytes += len(data)

    def start(self) -> bytes:
        self._write_part("[Content_Types].xml", _CONTENT_TYPES)
        self._write_part("_rels/.rels", _ROOT_RELS)
        self._write_part("xl/styles.xml", _STYLES)
        self._open_sheet()
        return self._sink.take()

    def _row_xml(self, n: int, values: Sequence[Cell]) -> str:
        parts = [f'<row r="{n}">']
        for ref, value in zip(self._letters, values, strict=True):
            if value is None:
                continue
            if isinstance(value, bool):
                parts.append(f'<c r="{ref}{n}" t="b"><v>{int(value)}</v></c>')
            elif isinstance(value, int):
                parts.append(f'<c r="{ref}{n}"><v>{value}</v></c>')
            else:
                text = clean(value)
                if not text:
                    continue
                space = ' xml:space="preserve"' if text[0].isspace() or text[-1].isspace() else ""
                parts.append(f'<c r="{ref}{n}" t="inlineStr"><is><t{space}>{_escape(text)}</t></is></c>')
        parts.append("</row>")
        return "".join(parts)

    def rows(self, rows: Iterable[Sequence[Cell]]) -> bytes:
        pending: list[str] = []
        size = 0
        for values in rows:
            text = self._row_xml(self._row + 1, values)
            if self._row + 1 > self._max_rows or self._bytes + size + len(text) * 4 > self._max_bytes:
                self._put("".join(pending))
                pending, size = [], 0
                self._close_sheet()
                self._open_sheet()
                text = self._row_xml(self._row + 1, values)
            pending.append(text)
            size += len(text) * 4  # an upper bound of its UTF-8 size, without encoding it twice
            self._row += 1
        if pending:
            self._put("".join(pending))
        return self._sink.take()

    def finish(self) -> bytes:
        self._close_sheet()
        sheets = "".join(f'<sheet name="{_escape(name)}" sheetId="{i}" r:id="rId{i}"/>'
                         for i, name in enumerate(self._sheets, 1))
        self._write_part("xl/workbook.xml", _HEAD + f'<workbook xmlns="{_NS}" xmlns:r="{_REL_NS}">'
                         f"<sheets>{sheets}</sheets></workbook>")
        rels = "".join(f'<Relationship Id="rId{i}" Type="{_REL_NS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
                       for i in range(1, len(self._sheets) + 1))
        styles = f'<Relationship Id="rId{len(self._sheets) + 1}" Type="{_REL_NS}/styles" Target="styles.xml"/>'
        self._write_part("xl/_rels/workbook.xml.rels", _HEAD + f'<Relationships xmlns="{_PKG_REL_NS}">'
                         f"{rels}{styles}</Relationships>")
        self._zip.close()
        return self._sink.take()
