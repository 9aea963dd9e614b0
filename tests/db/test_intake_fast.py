"""The column-wise 12345 CSV fast path (db/intake/fast12345.py) gives exactly what the per-record
path gives: the same staging rows and the same quarantine records with the same reasons. No Qt."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from db import datum as datum_mod
from db.intake import csv12345
from db.intake.csv12345 import Csv12345Reader
from db.intake.pipeline import _context
from db.intake.prepare import prepare
from db.intake.textio import FeedFile
from db.replica import open_replica

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "intake"
BENCH_CSV = Path(__file__).resolve().parents[2] / "bench" / ".data" / "hotline-12345-50000.csv"
NOW = 1795000000.0  # 2026-11-19: fixed, so "in the future" is the same for both runs


@pytest.fixture(scope="module")
def replica(demo_db):
    r = open_replica(demo_db)
    yield r
    r.close()


@pytest.fixture(autouse=True)
def exact_datum(monkeypatch):
    # the tabulated GCJ-02/BD-09 inverse is used per call where points are dense: it differs from
    # the exact one by centimetres, so batch composition could flip a 6th decimal; compare exact
    monkeypatch.setattr(datum_mod, "TILE_BUILD_AFTER", 10**12)


def _run(replica, path: Path, *, fast: bool, batch: int = 500, encoding=None, mapping=None):
    conn = replica.reader()
    try:
        ctx = _context(replica, conn, "hotline_12345", "12345-csv", {}, "WGS-84")
        ctx.now = NOW
        with FeedFile(path, encoding) as feed:
            reader = Csv12345Reader(feed, mapping=mapping)
            reader.fast = fast
            reader.batch_size = batch
            ctx.labels = reader.labels
            rows, quarantine, frames, records = [], [], 0, 0
            for b in reader.batches():
                frames += b.frame is not None
                p = prepare(b, ctx)
                records += p.records
                rows.extend(r[1:] for r in p.rows)  # seq is renumbered per staged wave anyway
                quarantine.extend(p.quarantine)
    finally:
        conn.close()
    return rows, quarantine, frames, records


def _same(replica, path: Path, **kw) -> int:
    fast = _run(replica, path, fast=True, **kw)
    slow = _run(replica, path, fast=False, **kw)
    assert slow[2] == 0
    assert fast[3] == slow[3]
    assert fast[1] == slow[1]
    assert len(fast[0]) == len(slow[0])
    for a, b in zip(fast[0], slow[0], strict=True):
        assert a == b
    return fast[2]


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


HEADER = "工单编号,来电时间,诉求类型,诉求内容,地址,联系人,联系电话,经度,纬度,坐标系,状态\n"
GOOD = [
    "A1,2026-11-10 08:15:00,噪音扰民,楼上装修噪音很大影响休息,崇川区钟秀街道某小区3幢,张先生,13800000001,120.8873,32.0487,WGS-84,",
    "A2,2026-11-10 09:02,路灯不亮,小区门口路灯连续三天不亮晚上出行不便非常危险请尽快处理谢谢各位,崇川区城东街道,,,120.8936,32.0506,GCJ-02,已结案",
    "A3,2026-11-10T09:30:00,咨询类,想咨询附近有没有宠物寄养点,,王先生,13800000003,120.8998,32.0227,BD09,",
    "A4,2026-11-10 10:00:00,占道经营,早市摊贩占用人行道经营,崇川区和平桥街道,,,120.8760,32.0110,火星,已受理",
    "A6,2026-11-10 10:00:00,噪音扰民,两个街道,钟秀街道与城东街道交界处,,,120.8760,32.0110,WGS-84,",
    "A7,2026-11-10 10:00:00,噪音扰民,无名街道,某某路街道口,,,120.8760,32.0110,WGS-84,",
    "A5,2026-11-10 10:00:00, 井盖破损 ,井盖缺失,  崇川区虹桥街道 ,,,  120.8760 ,32.0110,cgcs2000,",
]
BAD = [
    ",2026-11-10 08:15:00,噪音扰民,缺编号,崇川区,,,120.8873,32.0487,WGS-84,",  # missing id
    "B2,2026-13-10 08:15:00,噪音扰民,坏日期,崇川区,,,120.8873,32.0487,WGS-84,",  # bad date
    "B3,2026/11/10 8:15,噪音扰民,另一种日期格式,崇川区,,,120.8873,32.0487,WGS-84,",  # slow-path format, valid
    "B4,2030-11-10 08:15:00,噪音扰民,未来日期,崇川区,,,120.8873,32.0487,WGS-84,",  # future
    "B5,2026-11-10 08:15:00,噪音扰民,,崇川区,,,120.8873,32.0487,WGS-84,",  # missing content
    "B6,2026-11-10 08:15:00,噪音扰民,区外,崇川区,,,121.5,31.2,WGS-84,",  # outside
    "B7,2026-11-10 08:15:00,噪音扰民,非数字,崇川区,,,12O.88,32.0487,WGS-84,",  # non-numeric
    "B8,2026-11-10 08:15:00,噪音扰民,坐标系未知,崇川区,,,120.8873,32.0487,北京54,",  # unknown datum
    "B9,2026-11-10 08:15:00,噪音扰民,超范围,崇川区,,,220.8873,32.0487,WGS-84,",  # out of range
    "B10,2026-11-10 08:15:00,噪音扰民,只有地址,崇川区钟秀街道,,,,,,",  # geocoding
    "B11,2026-11-10 08:15:00,噪音扰民,经纬度颠倒,崇川区,,,32.0487,120.8873,WGS-84,",  # swapped
    "B12,2026-11-10 08:15:00,噪音扰民,科学计数,崇川区,,,1.208873e2,32.0487,WGS-84,",  # slow parse, valid
    "B13,2026-11-10 08:15:00,噪音扰民,缺纬度,,,,120.8873,,WGS-84,",  # missing lat
    "B14,2026-11-10 08:15:00,噪音扰民,多一列,崇川区,,,120.8873,32.0487,WGS-84,,extra",  # too many fields
]
BAD = BAD[:-1] + GOOD + BAD[-1:]


def test_fixtures_fast_equals_slow(replica):
    for name in ("hotline_12345.csv",):
        _same(replica, FIXTURES / name)
    mapping = None
    m = FIXTURES / "mapping.json"
    if m.exists():
        import json

        mapping = json.loads(m.read_text(encoding="utf-8"))
        mapping = mapping.get("columns", mapping) if isinstance(mapping, dict) else None
    try:
        _same(replica, FIXTURES / "hotline_custom_headers.csv", mapping=mapping)
    except Exception as exc:  # a mapping file in another shape: the reader refuses both ways alike
        assert "mapping" in str(exc) or "not a 12345" in str(exc)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_good_and_bad_rows_fast_equals_slow_in_each_encoding(replica, tmp_path, encoding, monkeypatch):
    text = HEADER + "\n".join(GOOD * 3 + BAD + GOOD) + "\n"
    path = _write(tmp_path / f"f-{encoding}.csv", text, encoding)
    assert _same(replica, path, batch=7) > 0  # one block: the bad rows go per record inside prepare_frame
    # small blocks: the structurally bad row's block is read per record, the others column-wise
    monkeypatch.setattr(csv12345, "BLOCK_CHARS", 300)
    assert _same(replica, path, batch=7) > 0


def test_quoted_truncated_and_crlf_blocks_fall_back_and_stay_equal(replica, tmp_path):
    rows = GOOD + ['Q1,2026-11-10 08:15:00,噪音扰民,"带""引号"",和逗号",崇川区,,,120.8873,32.0487,WGS-84,'] + GOOD
    path = _write(tmp_path / "q.csv", (HEADER + "\r\n".join(rows) + "\r\nT1,2026-11-10 08:15:00,噪音扰民,截断"))
    _same(replica, path)
    bad_bytes = (HEADER + "\n".join(GOOD)).encode("utf-8") + b"\nE1,2026-11-10 08:15:00,x,\xff\xfe,a,,,120.8873,32.0487,,\n"
    (tmp_path / "e.csv").write_bytes(codecs.BOM_UTF8 + bad_bytes)
    _same(replica, tmp_path / "e.csv")


@pytest.mark.skipif(not BENCH_CSV.exists(), reason="bench CSV not generated (bench/bench_intake.py)")
def test_bench_sample_fast_equals_slow(replica, tmp_path):
    with open(BENCH_CSV, encoding="utf-8") as fh:
        lines = [next(fh) for _ in range(20_001)]
    sample = _write(tmp_path / "s.csv", "".join(lines))
    assert _same(replica, sample, batch=5_000) > 0
    gbk = _write(tmp_path / "s-gbk.csv", "".join(lines[:5001]), "gbk")
    assert _same(replica, gbk, batch=2_000) > 0


def test_a_second_code_column_fast_equals_slow(replica, tmp_path):
    head = "工单编号,来电时间,诉求类型,诉求子类,诉求内容,地址,经度,纬度\n"
    body = [
        "S1,2026-11-10 08:15:00,城市管理,噪音扰民,有噪音,崇川区钟秀街道,120.8873,32.0487",
        "S2,2026-11-10 08:16:00,,路灯不亮,灯不亮,崇川区城东街道,120.8936,32.0506",
        "S3,2026-11-10 08:17:00,咨询类,,咨询,,120.8998,32.0227",
        "S4,2026-11-10 08:18:00,,,无类型,崇川区,120.8760,32.0110",
        "S5,2026-11-10 08:19:00,市政-井盖破损,,井盖,崇川区,120.8760,32.0110",
    ]
    assert _same(replica, _write(tmp_path / "alt.csv", head + "\n".join(body * 8) + "\n")) > 0


def test_bytes_that_are_not_utf8_after_the_sample_are_encoding_errors_both_ways(replica, tmp_path):
    # detection reads the first 256 KiB: this file is taken for UTF-8, its late bad bytes reach the
    # column reader, which refuses them; the block then goes per record like before
    line = "U{i},2026-11-10 08:15:00,噪音扰民,{pad},崇川区钟秀街道,,,120.8873,32.0487,WGS-84,"
    good = "\n".join(line.format(i=i, pad="楼上装修噪音" * 20) for i in range(1200)).encode("utf-8")
    bad = b"\nX1,2026-11-10 08:15:00,x,\xff\xfe\xfd,a,,,120.8873,32.0487,,\n"
    path = tmp_path / "late.csv"
    path.write_bytes(HEADER.encode("utf-8") + good + bad + good.replace(b"U", b"V") + b"\n")
    with FeedFile(path) as feed:
        assert feed.encoding == "utf-8"
    _same(replica, path, batch=300)
    rows, quarantine, frames, _ = _run(replica, path, fast=True, batch=300)
    assert frames > 0 and len(quarantine) == 1 and quarantine[0]["reason"].startswith("encoding error")
    assert quarantine[0]["line"] == 1202
