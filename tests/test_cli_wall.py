"""--geometry parsing and where the wall goes (exact size, placement, all screens)."""

import argparse

import pytest

from app.cli import build_parser, parse_geometry


def test_parse_geometry():
    assert parse_geometry("7680x1400+0+0") == (7680, 1400, 0, 0)
    assert parse_geometry("3840x700+1920-10") == (3840, 700, 1920, -10)
    for bad in ("7680x1400", "x+0+0", "7680x1400+a+0", "10x10+0+0"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_geometry(bad)


def test_wall_flags_parse():
    args = build_parser().parse_args(["--wall", "--geometry", "7680x1400+0+0", "--size", "3840x700"])
    assert args.wall and args.geometry == (7680, 1400, 0, 0) and args.size == (3840, 700)


def test_wall_geometry(qapp):
    from widgets.wall_window import wall_geometry

    rect, whole = wall_geometry(qapp, size=(7680, 1400), geometry=(100, 100, 10, 20))
    assert (rect.x(), rect.y(), rect.width(), rect.height(), whole) == (10, 20, 7680, 1400, False)
    rect, whole = wall_geometry(qapp, geometry=(3840, 700, 5, 6))
    assert (rect.x(), rect.y(), rect.width(), rect.height(), whole) == (5, 6, 3840, 700, False)
    rect, whole = wall_geometry(qapp)
    assert whole and rect.width() > 0


@pytest.mark.parametrize("mode", [("--wall", (7680, 1400)), ("--station", (1920, 1080))], ids=["wall", "station"])
def test_wall_and_station_screenshots_have_exact_size(demo_copy, tmp_path, mode):
    from tests.test_cli import png_size, run

    flag, size = mode
    out = tmp_path / "shot.png"
    extra = [flag] if flag == "--wall" else [flag, "320613006"]
    r = run("--db", str(demo_copy), *extra, "--screenshot", str(out), "--size", f"{size[0]}x{size[1]}", timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    assert png_size(out) == size
    assert out.stat().st_size > 50_000
