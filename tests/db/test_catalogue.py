"""The shipped catalogue (categories, departments) and the demo event texts. No Qt."""

from __future__ import annotations

import csv
import datetime as dt
import random
import re

import pytest

from db import catalogue
from db.catalogue import (
    CATEGORIES_CSV,
    CATEGORY_FIELDS,
    DEPARTMENT_FIELDS,
    DEPARTMENTS_CSV,
    UNCLASSIFIED,
    leaf_codes,
    load_categories,
    load_departments,
    validate_catalogue,
)
from db.demo import texts


@pytest.fixture(scope="module")
def categories() -> list[dict]:
    return load_categories()


@pytest.fixture(scope="module")
def departments() -> list[dict]:
    return load_departments()


# --- catalogue files ----------------------------------------------------------------------------


def test_resources_path_points_at_repo_resources():
    assert catalogue.RESOURCES.name == "resources"
    assert CATEGORIES_CSV.is_file() and DEPARTMENTS_CSV.is_file()


def test_headers_are_exact():
    with open(CATEGORIES_CSV, encoding="utf-8", newline="") as fh:
        assert tuple(next(csv.reader(fh))) == CATEGORY_FIELDS
    with open(DEPARTMENTS_CSV, encoding="utf-8", newline="") as fh:
        assert tuple(next(csv.reader(fh))) == DEPARTMENT_FIELDS


def test_row_counts(categories, departments):
    assert 60 <= len(categories) <= 120
    assert 25 <= len(departments) <= 40


def test_catalogue_is_valid(categories, departments):
    assert validate_catalogue(categories, departments) == []


def test_unclassified_row(categories):
    rows = [c for c in categories if c["code"] == UNCLASSIFIED]
    assert len(rows) == 1
    u = rows[0]
    assert u["name_zh"] == "待分类"
    assert u["name_en"] == "To be classified"
    assert u["class"] == "ordinary"
    assert u["default_department"] is None
    assert u["parent"] is None
    assert u["arrival_clock"] == 0


def test_numeric_fields_are_converted(categories):
    for c in categories:
        assert isinstance(c["response_limit_min"], int)
        assert isinstance(c["handle_limit"], float)
        assert c["arrival_clock"] in (0, 1)


def test_codes_are_ascii_and_parents_come_first(categories):
    seen: set[str] = set()
    for c in categories:
        assert re.fullmatch(r"[A-Z0-9_.]+", c["code"]), c["code"]
        if c["parent"]:
            assert c["parent"] in seen
            assert c["code"].startswith(c["parent"] + ".")
        seen.add(c["code"])


def test_domain_classes(categories):
    by = {c["code"]: c for c in categories}
    for code in (
        "EMG.FIRE",
        "EMG.GASLEAK",
        "EMG.COLLAPSE",
        "FLOOD.INUNDATION",
        "EMG.VIOLENCE",
        "EMG.ACCIDENT",
    ):
        assert by[code]["class"] == "emergency"
        assert by[code]["handle_unit"] == "hours"
        assert by[code]["response_limit_min"] <= 10
    assert any(c["class"] == "assigned" for c in categories)
    for code in ("ORDER.EBIKE", "SAFETY.FIREEXIT", "LIVE.ELDERLY", "DISPUTE.NEIGHBOUR", "IOT.DOOR"):
        assert by[code]["arrival_clock"] == 1
    assert by["FAC.STREETLIGHT"]["handle_unit"] == "working_days"
    assert by["ENV.GARBAGE"]["handle_unit"] == "working_hours"
    for code in ("ECO.FISHING", "ECO.SAND", "ECO.DUMPING", "ECO.WATERQ", "IOT.MANHOLE", "IOT.THROWING"):
        assert code in by


def test_validate_reports_problems(categories, departments):
    bad = [dict(c) for c in categories]
    bad.append(dict(bad[-1]))  # duplicate code
    bad.append({**bad[5], "code": "ZZZ.ONE", "parent": "ZZZ"})  # missing parent
    bad.append({**bad[5], "code": "ENV.X1", "parent": "ENV", "default_department": "NOPE"})
    bad.append({**bad[5], "code": "ENV.X2", "parent": "ENV", "class": "urgent"})
    bad.append({**bad[5], "code": "ENV.X3", "parent": "ENV", "handle_unit": "weeks"})
    problems = "\n".join(validate_catalogue(bad, departments))
    assert "duplicate" in problems
    assert "missing parent ZZZ" in problems
    assert "unknown department NOPE" in problems
    assert "bad class 'urgent'" in problems
    assert "bad handle_unit 'weeks'" in problems
    dup_depts = departments + [dict(departments[0])]
    assert any("duplicate" in p for p in validate_catalogue(categories, dup_depts))
    no_unclassified = [c for c in categories if c["code"] != UNCLASSIFIED]
    assert any(UNCLASSIFIED in p for p in validate_catalogue(no_unclassified, departments))


def test_loader_empty_is_none_and_bad_number_raises(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(",".join(CATEGORY_FIELDS) + "\nA,,甲,A,ordinary,,30,1.5,hours,0\n", encoding="utf-8")
    [row] = load_categories(path)
    assert row["parent"] is None and row["default_department"] is None and row["handle_limit"] == 1.5
    path.write_text(",".join(CATEGORY_FIELDS) + "\nA,,甲,A,ordinary,,soon,1,hours,0\n", encoding="utf-8")
    with pytest.raises(ValueError, match="response_limit_min"):
        load_categories(path)


# --- texts ----------------------------------------------------------------------------------------


def test_every_leaf_has_templates(categories):
    leaves = leaf_codes(categories)
    assert UNCLASSIFIED in leaves
    assert sorted(texts.TEMPLATES) == sorted(leaves)
    for code, pairs in texts.TEMPLATES.items():
        assert 3 <= len(pairs) <= 8, code
        for title, desc in pairs:
            assert title and desc
            assert texts.placeholders(title) | texts.placeholders(desc) <= texts.GENERATED_KEYS


def test_share_of_templates_with_personal_data():
    pairs = [p for v in texts.TEMPLATES.values() for p in v]
    with_pd = [d for _, d in pairs if texts.placeholders(d) & {"name", "phone"}]
    assert 0.2 <= len(with_pd) / len(pairs) <= 0.3


def test_render_every_code(categories):
    rng = random.Random(7)
    fill = {"road": "工农路", "estate": "北濠东村", "junction": "工农路与青年路交叉口"}
    codes = [c["code"] for c in categories] + ["NO.SUCH.CODE"]
    for code in codes:
        for _ in range(10):
            title, desc = texts.render(code, rng, fill)
            assert title and desc, code
            assert len(title) <= texts.TITLE_MAX
            assert "{" not in title + desc and "}" not in title + desc


def test_render_every_template_without_fill():
    rng = random.Random(3)
    for code in texts.TEMPLATES:
        seen = set()
        for _ in range(60):
            title, desc = texts.render(code, rng)
            assert 0 < len(title) <= texts.TITLE_MAX and desc
            seen.add(desc)
        assert len(seen) >= 2, code


def test_render_uses_fill_and_falls_back():
    rng = random.Random(11)
    fill = {"road": "某某路", "estate": "某某新村", "name": "张三", "phone": "13800000000"}
    for _ in range(50):
        title, desc = texts.render("LIVE.ELDERLY", rng, fill)
        assert "某某新村" in desc
        assert "{name}" not in desc
        if "老人张三" in desc:
            assert "13800000000" in desc
    # unknown code uses UNCLASSIFIED's templates; group code uses its children's
    assert texts.templates_for("NOPE") is texts.TEMPLATES[UNCLASSIFIED]
    assert set(texts.templates_for("IOT")) == {
        p for k in texts.TEMPLATES if k.startswith("IOT.") for p in texts.TEMPLATES[k]
    }


def test_long_fill_title_is_clipped():
    title, _ = texts.render("ROAD.SIGNAL", random.Random(1), {"junction": "很长的路名" * 20})
    assert len(title) == texts.TITLE_MAX and title.endswith("…")


def test_fake_people():
    rng = random.Random(5)
    for _ in range(500):
        name = texts.fake_name(rng)
        assert 2 <= len(name) <= 3 and name[0] in texts.PERSON_SURNAMES
        assert all(ch in texts.GIVEN_CHARS for ch in name[1:])
        phone = texts.fake_phone(rng)
        assert re.fullmatch(r"1[3-9]\d{9}", phone)


def test_fake_id_no_checksum_and_date():
    assert texts.id_checksum("11010519491231002") == "X"  # the GB 11643 worked example
    assert texts.is_valid_id_no("11010519491231002X")
    assert not texts.is_valid_id_no("110105194912310021")
    rng = random.Random(9)
    for _ in range(1000):
        id_no = texts.fake_id_no(rng)
        assert len(id_no) == 18 and id_no.startswith("320613")
        assert texts.is_valid_id_no(id_no)
        born = dt.date(int(id_no[6:10]), int(id_no[10:12]), int(id_no[12:14]))
        assert dt.date(1935, 1, 1) <= born <= dt.date(2005, 12, 31)
        weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
        total = sum(int(d) * w for d, w in zip(id_no[:17], weights, strict=True))
        assert id_no[17] == "10X98765432"[total % 11]


def test_determinism():
    def run(seed: int) -> list:
        rng = random.Random(seed)
        out = []
        for code in sorted(texts.TEMPLATES):
            out.append(texts.render(code, rng, {"road": "工农路"}))
            out.append((texts.fake_name(rng), texts.fake_phone(rng), texts.fake_id_no(rng)))
        return out

    assert run(42) == run(42)
    assert run(42) != run(43)
