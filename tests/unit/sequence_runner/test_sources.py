"""Source connectors on local files: records in order, and errors that name the file and line."""

from pathlib import Path

import pytest
from sequence_runner.adapters.connectors.base import SourceConnector, SourceError
from sequence_runner.adapters.connectors.csv_source import CsvSourceConnector
from sequence_runner.adapters.connectors.files import resolve_in_data_folder
from sequence_runner.adapters.connectors.inline_source import InlineSourceConnector
from sequence_runner.adapters.connectors.jsonl_source import JsonlSourceConnector
from sequence_runner.domain.records import SourceEntry


async def read(source: SourceConnector) -> list[SourceEntry]:
    return [record async for record in source.read()]


def csv_file(tmp_path: Path, text: str) -> CsvSourceConnector:
    path = tmp_path / "people.csv"
    path.write_text(text, encoding="utf-8")
    return CsvSourceConnector(path, "hr/people.csv")


async def test_csv_rows_become_records_with_their_line_numbers(tmp_path: Path) -> None:
    source = csv_file(tmp_path, '\ufeffid,name\n1,Ann\n\n2,"Bo, Jr"\n')
    assert await read(source) == [
        SourceEntry(line=2, fields={"id": "1", "name": "Ann"}),
        SourceEntry(line=4, fields={"id": "2", "name": "Bo, Jr"}),
    ]


async def test_csv_with_another_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("id;name\n1;Ann\n", encoding="utf-8")
    records = await read(CsvSourceConnector(path, "p.csv", ";"))
    assert records[0].fields == {"id": "1", "name": "Ann"}


async def test_a_csv_row_with_the_wrong_number_of_fields_names_file_and_line(
    tmp_path: Path,
) -> None:
    source = csv_file(tmp_path, "id,name\n1,Ann\n2\n")
    with pytest.raises(SourceError, match=r"^hr/people.csv: line 3: expected 2 fields, found 1$"):
        await read(source)


async def test_a_quoted_newline_counts_in_the_line_numbers(tmp_path: Path) -> None:
    source = csv_file(tmp_path, 'id,name\n1,"two\nlines"\n2,a,b\n')
    with pytest.raises(SourceError, match=r"line 4: expected 2 fields, found 3"):
        await read(source)


async def test_a_record_over_several_lines_is_known_by_its_first_line(tmp_path: Path) -> None:
    source = csv_file(tmp_path, 'id,name\n1,"two\nlines"\n2,b\n3,"x\ny",z\n')
    with pytest.raises(SourceError, match=r"^hr/people.csv: line 5: expected 2 fields, found 3$"):
        await read(source)
    source = csv_file(tmp_path, 'id,name\n1,"two\nlines"\n2,b\n')
    records = await read(source)
    assert [(r.line, r.fields["id"]) for r in records] == [(2, "1"), (4, "2")]


async def test_an_unclosed_quote_is_refused_where_it_opens(tmp_path: Path) -> None:
    # Read leniently, the quote would swallow every following row into one field: the
    # records after it would vanish from the source, and be planned as deletions.
    source = csv_file(tmp_path, 'id,name\n1,Ann\n2,"Bo\n3,Cy\n4,Di\n')
    with pytest.raises(SourceError, match=r"^hr/people.csv: line 3: unexpected end of data"):
        await read(source)


async def test_text_after_a_closing_quote_is_refused(tmp_path: Path) -> None:
    source = csv_file(tmp_path, 'id,name\n1,"Bo" Jr\n')
    with pytest.raises(SourceError, match=r"^hr/people.csv: line 2: .*expected after"):
        await read(source)


async def test_blank_lines_before_the_header_are_skipped(tmp_path: Path) -> None:
    source = csv_file(tmp_path, "\n\nid,name\n1,Ann\n")
    assert await read(source) == [SourceEntry(line=4, fields={"id": "1", "name": "Ann"})]


async def test_a_bad_row_after_many_good_ones_is_found(tmp_path: Path) -> None:
    rows = "".join(f"{i},n{i}\n" for i in range(2500))
    source = csv_file(tmp_path, f"id,name\n{rows}x\n")
    with pytest.raises(SourceError, match=r"line 2502: expected 2 fields, found 1"):
        await read(source)


async def test_an_empty_csv_file_has_no_header_and_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="the file is empty"):
        await read(csv_file(tmp_path, ""))


async def test_a_csv_header_with_repeated_names_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"line 1: header names must be unique.*repeated: id"):
        await read(csv_file(tmp_path, "id,id\n1,2\n"))


async def test_a_csv_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"id,name\n1,Jos\xe9\n")
    with pytest.raises(SourceError, match="not UTF-8"):
        await read(CsvSourceConnector(path, "latin.csv"))


async def test_a_byte_that_is_not_utf8_is_reported_at_its_line_deep_in_a_file(
    tmp_path: Path,
) -> None:
    # Past the first 8 KB a text stream decodes at once: the error must still name its line.
    rows = "".join(f"{n},name{n}\n" for n in range(2, 2000))
    csv_path, jsonl_path = tmp_path / "latin.csv", tmp_path / "latin.jsonl"
    csv_path.write_bytes(b"id,name\n" + rows.encode() + b"2000,Jos\xe9\n")
    with pytest.raises(SourceError, match=r"latin.csv: line 2000: not UTF-8 text \(byte 0xe9"):
        await read(CsvSourceConnector(csv_path, "latin.csv"))
    jsonl_path.write_bytes(b'{"id": 1}\n{"id": 2, "name": "Jos\xe9"}\n')
    with pytest.raises(SourceError, match=r"latin.jsonl: line 2: not UTF-8 text"):
        await read(JsonlSourceConnector(jsonl_path, "latin.jsonl"))


async def test_jsonl_lines_become_records(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": 1, "tags": ["a"]}\n\n{"id": 2}\n', encoding="utf-8")
    assert await read(JsonlSourceConnector(path, "p.jsonl")) == [
        SourceEntry(line=1, fields={"id": 1, "tags": ["a"]}),
        SourceEntry(line=3, fields={"id": 2}),
    ]


async def test_jsonl_line_numbers_count_blank_and_crlf_lines(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": 1}\r\n\r\n   \n{"id": 2}\r\n{"id": \n')
    with pytest.raises(SourceError, match=r"^p.jsonl: line 5: invalid JSON"):
        await read(JsonlSourceConnector(path, "p.jsonl"))


async def test_bad_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": 1}\n{"id": \n', encoding="utf-8")
    with pytest.raises(SourceError, match=r"^p.jsonl: line 2: invalid JSON"):
        await read(JsonlSourceConnector(path, "p.jsonl"))


async def test_a_json_line_that_is_not_an_object_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": 1}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(SourceError, match=r"line 2: expected a JSON object, found list"):
        await read(JsonlSourceConnector(path, "p.jsonl"))


async def test_inline_records_are_numbered_by_position() -> None:
    source = InlineSourceConnector("people", [{"id": "a"}, {"id": "b"}])
    assert [(r.line, r.fields) for r in await read(source)] == [(1, {"id": "a"}), (2, {"id": "b"})]


def test_inline_records_missing_from_the_request_are_refused() -> None:
    with pytest.raises(
        SourceError, match=r"no inline records for sequence 'people'.*inputs.people"
    ):
        InlineSourceConnector("people", None)


def test_a_file_inside_the_data_folder_resolves(tmp_path: Path) -> None:
    (tmp_path / "hr").mkdir()
    (tmp_path / "hr" / "a.csv").write_text("id\n")
    assert resolve_in_data_folder(tmp_path, "hr/a.csv") == (tmp_path / "hr" / "a.csv").resolve()


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        SourceError, match=r"source file 'hr/none.csv' not found in the data folder"
    ):
        resolve_in_data_folder(tmp_path, "hr/none.csv")


def test_a_symlink_out_of_the_data_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secret.csv"
    outside.write_text("id\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "link.csv").symlink_to(outside)
    with pytest.raises(SourceError, match="resolves outside the data folder; refused"):
        resolve_in_data_folder(data, "link.csv")


def test_a_path_climbing_out_of_the_data_folder_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "x.csv").write_text("id\n")
    with pytest.raises(SourceError, match="outside the data folder"):
        resolve_in_data_folder(data, "../x.csv")
