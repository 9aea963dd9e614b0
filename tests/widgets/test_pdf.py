"""widgets/pdf.py: HTML → PDF through a hidden QWebEnginePage, offscreen (pytest-qt)."""

from __future__ import annotations

import pytest

from widgets.pdf import a4_layout, html_to_pdf

HTML = """<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>测试</title>
<style>body { font-family: "WenQuanYi Micro Hei", sans-serif; }</style></head>
<body><h1>一哨一档 · 事件档案</h1><p>崇川区网格化社会治理</p>
<svg width="200" height="100"><rect x="10" y="10" width="180" height="80" fill="#0a1a3a"/></svg></body></html>"""


def test_html_to_pdf_writes_a_pdf(qtbot, tmp_path):
    out = tmp_path / "doc.pdf"
    html_to_pdf(HTML, out)
    data = out.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(data) > 1000
    assert [p.name for p in tmp_path.iterdir()] == ["doc.pdf"]  # no temporary files left behind


def test_large_html_is_not_blank(qtbot, tmp_path):
    """Above 2 MiB, setHtml would print a blank page; loading from a file does not.
    (One page holding a 2.5 MiB inline SVG path, so the test stays fast.)"""
    pts = " ".join(f"L{(i * 37) % 700}.{i % 10},{(i * 53) % 900}.{i % 7}" for i in range(200_000))
    svg = f'<svg width="700" height="900" viewBox="0 0 700 900"><path d="M0,0 {pts}" stroke="#0a1a3a" fill="none"/></svg>'
    html = f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{svg}</body></html>"
    assert len(html.encode("utf-8")) > 2 * 1024 * 1024
    small, big = tmp_path / "small.pdf", tmp_path / "big.pdf"
    html_to_pdf(HTML, small)
    html_to_pdf(html, big, timeout_ms=120_000)
    assert big.read_bytes().startswith(b"%PDF")
    assert big.stat().st_size > 10 * small.stat().st_size  # the path is there: not a blank page


def test_landscape_layout(qtbot, tmp_path):
    out = tmp_path / "wide.pdf"
    html_to_pdf(HTML, out, layout=a4_layout((10, 10, 10, 10), landscape=True))
    data = out.read_bytes()
    assert data.startswith(b"%PDF")
    # A4 landscape: about 841 x 595 points (Chromium writes 840.96 x 594.96)
    import re

    box = re.search(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", data)
    assert box is not None
    w, h = float(box.group(1)), float(box.group(2))
    assert w == pytest.approx(842, abs=2) and h == pytest.approx(595, abs=2)


def test_missing_directory_raises(qtbot, tmp_path):
    with pytest.raises(RuntimeError, match="does not exist"):
        html_to_pdf(HTML, tmp_path / "no" / "such" / "dir.pdf")


def test_timeout_raises_and_leaves_no_file(qtbot, tmp_path):
    out = tmp_path / "late.pdf"
    with pytest.raises(RuntimeError, match="within 1 ms"):
        html_to_pdf(HTML, out, timeout_ms=1)
    assert not out.exists()
