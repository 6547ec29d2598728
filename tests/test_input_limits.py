"""tiein.loaders.limits and tiein.loaders.encoding on small hand-made bytes (the CLI side is in test_bad_input)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from tiein.errors import InputError
from tiein.loaders import limits
from tiein.loaders.encoding import detect, score
from tiein.loaders.limits import Limits, check_json_depth, check_lines, gunzip, read_input

SMALL = Limits(max_line_bytes=10, ratio_floor=1000, max_ratio=20, max_input_bytes=100_000, max_json_depth=3)


def test_check_lines_names_the_long_line_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "_CHUNK", 16)  # chunk edges inside lines
    check_lines(b"a,b\n" * 40, "f.csv", SMALL)
    with pytest.raises(InputError, match="line 7 ") as err:
        check_lines(b"a,b\n" * 6 + b"x" * 25 + b"\nok\n", "f.csv", SMALL)
    assert err.value.row == 7
    with pytest.raises(InputError, match="line 3 "):  # the last line, without a newline
        check_lines(b"a\nb\n" + b"y" * 11, "f.csv", SMALL)


def test_gunzip_refuses_a_bomb_and_reads_several_members() -> None:
    assert gunzip(gzip.compress(b"ab") + gzip.compress(b"cd"), "f.gz", SMALL) == b"abcd"
    with pytest.raises(InputError, match="20x"):
        gunzip(gzip.compress(b"0" * 50_000), "f.gz", SMALL)
    with pytest.raises(InputError, match="limit"):
        gunzip(gzip.compress(os.urandom(60_000) * 2), "f.gz", SMALL)
    with pytest.raises(InputError, match="truncated"):
        gunzip(gzip.compress(b"abc" * 100)[:-12], "f.gz", SMALL)


def test_read_input_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    for path, why in (
        (tmp_path / "fifo", "FIFO"),
        (Path("/dev/zero"), "character device"),
        (tmp_path, "directory"),
        (tmp_path / "nope", "not found"),
    ):
        with pytest.raises(InputError, match=why):
            read_input(path, SMALL)
    (tmp_path / "big").write_bytes(b"x" * 100_001)
    with pytest.raises(InputError, match="over the"):
        read_input(tmp_path / "big", SMALL)


def test_json_depth() -> None:
    check_json_depth(b'{"a": [[1]]}\n' * 10, "f.jsonl", SMALL)
    with pytest.raises(InputError, match="deeper than 3") as err:
        check_json_depth(b'{"a": 1}\n{"a": [[[{"b": 2}]]]}\n', "f.jsonl", SMALL)
    assert err.value.row == 2


def test_utf8_and_bom_and_nul() -> None:
    assert detect("名称,价格\n".encode(), "f") == "utf-8"
    assert detect(b"\xef\xbb\xbfa,b\n", "f") == "utf-8-sig"
    with pytest.raises(InputError, match="NUL") as err:
        detect(b"a,b\nc,d\x00\n", "f")
    assert err.value.row == 2


def test_mixed_encodings_name_the_first_line_that_is_not_utf8_in_either_order() -> None:
    utf8 = "a,无线蓝牙耳机\n".encode()
    gbk = "b,保温杯 不锈钢\n".encode("gbk")
    with pytest.raises(InputError, match="line 2 is UTF-8 but line 3 is not") as err:
        detect(b"id,title\n" + utf8 + gbk, "f")
    assert err.value.row == 3
    with pytest.raises(InputError, match="line 3 is UTF-8 but line 2 is not"):
        detect(b"id,title\n" + gbk + utf8, "f")


def test_gbk_and_big5_are_told_apart_or_refused() -> None:
    simplified = "双人帐篷 户外露营,折叠露营椅,羽绒睡袋\n"
    traditional = "無線藍牙耳機 降噪,運動鞋 男款 透氣,保溫杯 不鏽鋼\n"
    assert detect(simplified.encode("gbk"), "f") == "gb18030"
    assert detect(traditional.encode("big5"), "f") == "big5"
    assert score(traditional)[0] == 1.0 and score(traditional.encode("big5").decode("gb18030"))[0] < 0.8
    with pytest.raises(InputError, match="cannot tell the encoding"):  # two characters: a tie
        detect("價格\n".encode("big5"), "f")


def test_xlsx_cells_and_csv_columns_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import openpyxl

    from tiein.loaders.read import read_table

    monkeypatch.setattr(Limits, "from_env", classmethod(lambda cls: Limits(max_cells=8, max_columns=3)))
    wb = openpyxl.Workbook()
    for row in (["product_id", "title", "price"], ["a", "A", 1], ["b", "B", 2], ["c", "C", 3]):
        wb.active.append(row)
    wb.save(tmp_path / "cells.xlsx")
    with pytest.raises(InputError, match="8 cells") as err:
        read_table(tmp_path / "cells.xlsx")
    assert err.value.row == 3
    (tmp_path / "wide.csv").write_text("a,b,c,d\n1,2,3,4\n")
    with pytest.raises(InputError, match="4 columns, over the limit of 3") as err:
        read_table(tmp_path / "wide.csv")
    assert err.value.row == 1
