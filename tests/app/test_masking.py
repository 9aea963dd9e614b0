"""Personal data masking for the wall (app/masking.py)."""

from app import masking


def test_phone_id_and_landline_are_masked_in_free_text():
    text = "居民张晓明反映，联系电话13812345678，身份证320613198501011234，座机0513-85123456。"
    out = masking.mask_text(text)
    assert "13812345678" not in out and "138****5678" in out
    assert "320613198501011234" not in out and "320613********1234" in out
    assert "85123456" not in out and "0513-****3456" in out
    assert "张晓明" not in out and "张**" in out
    assert masking.find_personal(out) == []


def test_names_after_markers_and_titles_are_masked():
    assert "李*" in masking.mask_text("联系人李四，电话")
    assert masking.mask_text("王先生来电") == "王先生来电"  # a surname alone is kept
    assert "王*" in masking.mask_text("王小明先生反映") or "王**" in masking.mask_text("王小明先生反映")
    out = masking.mask_text("家属赵敏反映楼道堆物", known_names=["赵敏"])
    assert "赵敏" not in out


def test_exact_house_numbers_are_masked_but_counts_and_times_are_kept():
    out = masking.mask_text("工农路88号12幢1203室门口，已有3人反映，19:30发生")
    assert "88号" not in out and "12幢" not in out and "1203室" not in out
    assert "**号" in out and "3人" in out and "19:30" in out


def test_masking_is_idempotent_and_handles_empty():
    once = masking.mask_text("市民刘洋反映，电话13912345678，和平路5号")
    assert masking.mask_text(once) == once
    assert masking.mask_text(None) == ""
    assert masking.mask_text("") == ""


def test_mask_record_and_layers():
    row = {"reporter_name": "陈建国", "reporter_phone": "13700001111", "reporter_id_no": "32061319900101123X",
           "title": "陈建国家门口积水", "address": "学田路12号", "street_name": "学田街道"}
    out = masking.mask_record(row)
    assert out["reporter_name"] == "陈**"
    assert out["reporter_phone"] == "137****1111"
    assert "1990" not in out["reporter_id_no"]
    assert "陈建国" not in out["title"]
    assert out["address"] == "学田路**号"
    assert out["street_name"] == "学田街道"
    staff = {"features": [{"properties": {"name": "周一鸣", "grid_id": "g1"}}]}
    assert masking.mask_layer("staff", staff)["features"][0]["properties"]["name"] == "周**"
    devices = {"features": [{"properties": {"name": "摄像头 12号"}}]}
    assert masking.mask_layer("devices", devices) is devices
    delta = {"events": {"upsert": [{"properties": {"title": "电话13812345678"}}], "remove": [1]}}
    assert "13812345678" not in str(masking.mask_map_delta(delta))
