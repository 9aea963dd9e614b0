"""Issue 'Three one-maps': theme switch, building layer, one station's year chart, playback rate.

Usage: .venv/bin/python bench/bench_themes.py
Writes bench/results/themes.md.  Uses a 100k-event demo replica with the one-map data, generated
once into bench/.data/onemaps-100000.db (its generation time is reported when it is made).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--no-sandbox")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DATA, UNTIL, median, pct, timed, write_table  # noqa: E402


def replica_path() -> tuple[Path, float | None]:
    from app.timeutil import parse
    from db.demo.generate import DemoOptions, generate_demo_file

    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / "onemaps-100000.db"
    if path.exists():
        return path, None
    t0 = time.perf_counter()
    generate_demo_file(path, DemoOptions(until=parse(UNTIL), events=100_000))
    return path, time.perf_counter() - t0


def dense_replica() -> Path:
    """20,000 events over 3 days (about 6–7k a day), for playback with ≥ 5k events on the map."""
    from app.timeutil import parse
    from db.demo.generate import DemoOptions, generate_demo_file

    path = DATA / "onemaps-dense-20000.db"
    if not path.exists():
        generate_demo_file(path, DemoOptions(until=parse(UNTIL), events=20_000, days=3))
    return path


def bench_onemaps_demo_part() -> float:
    """The one-maps part of the demo alone (buildings, enterprises, shoreline, stations, a year of
    hourly readings, cameras), into an empty migrated replica with the demo geography."""
    import tempfile

    from app.timeutil import parse
    from db.demo import onemaps
    from db.demo.generate import _write_geography
    from db.demo.geography import build_geography
    from db.replica import open_replica

    tmp = Path(tempfile.mkdtemp()) / "part.db"
    rep = open_replica(tmp)
    geo = build_geography(20241)
    conn = rep.writer
    conn.execute("BEGIN")
    _write_geography(conn, geo)
    t0 = time.perf_counter()
    onemaps.generate(conn, geo, seed=20241, until=parse(UNTIL))
    took = time.perf_counter() - t0
    conn.execute("ROLLBACK")
    rep.close()
    return took


def main() -> None:
    from PySide6.QtWidgets import QApplication

    from widgets.qt_setup import prepare_qt

    prepare_qt()
    app = QApplication.instance() or QApplication(sys.argv)
    from app import ecology as eco_app
    from app.playback import Playback
    from db.replica import connect
    from layers import economy
    from layers.base import dumps
    from layers.render import build_page, layer_data
    from widgets.ecology_panel import EcologyPanel
    from widgets.map_view import MapView

    path, gen_s = replica_path()
    part_s = bench_onemaps_demo_part()
    conn = connect(path)

    def pump_until(cond, timeout=60.0):
        t_end = time.perf_counter() + timeout
        while not cond():
            app.processEvents()
            if time.perf_counter() > t_end:
                raise TimeoutError("page did not answer")
            time.sleep(0.001)

    def call(view, js):
        box = {}
        view.run_json(js, lambda v: box.setdefault("v", v))
        pump_until(lambda: "v" in box)
        return box["v"]

    # the console's page: every theme's layers, events pushed after load
    view = MapView()
    view.resize(1600, 900)
    view.show()
    html = build_page(conn, theme="command", include_points=False)
    points = layer_data(conn, ["events", "staff", "devices", "eco_cameras", "eco_stations", "building_dots"])
    scripts = [f"window.onemap.setLayerData({view._js_args(k, fc)})" for k, fc in points.items()]
    loaded = {}
    view.loaded.connect(lambda ok: loaded.setdefault("ok", ok))
    view.show_page(html, _initial_scripts=scripts)
    pump_until(lambda: "ok" in loaded)
    call(view, "JSON.stringify(window.onemap.map.setView([32.01, 120.87], 14, {animate: false}) && 1)")
    n_events = call(view, "JSON.stringify(window.onemap.countFeatures('events'))")

    # theme switch: round trip from Python (what the operator waits for) and inside the page
    switch_rt, switch_page = [], []
    for _ in range(8):
        for name in ("economy", "ecology", "command"):
            t0 = time.perf_counter()
            res = call(view, f"window.onemap.setTheme({view._js_args(name)})")
            switch_rt.append((time.perf_counter() - t0) * 1000)
            switch_page.append(res["ms"])

    # building layer: query + GeoJSON in Python, then drawing in the page
    py_ms = [t * 1000 for t in timed(lambda: economy.buildings_features(conn), repeat=5)]
    fc = economy.buildings_features(conn)
    payload = dumps(fc).decode()
    call(view, "window.onemap.setTheme('economy')")
    draw = []
    for _ in range(5):
        t0 = time.perf_counter()
        call(view, f"JSON.stringify(window.onemap.setLayerData('buildings', {payload}))")
        draw.append((time.perf_counter() - t0) * 1000)

    # one station's year of hourly readings into the chart (query + arrays + pyqtgraph)
    panel = EcologyPanel(lambda: connect(path))
    panel.resize(520, 800)
    panel.show()
    last = eco_app.latest_hour(conn)
    panel.window = (last + 1 - 365 * 24, last + 1)
    query = [t * 1000 for t in timed(lambda: eco_app.station_series(conn, 5, last + 1 - 365 * 24, last + 1), repeat=10)]
    chart = []
    for sid in range(1, 21):
        t0 = time.perf_counter()
        ser = panel.load_series(sid)
        app.processEvents()
        chart.append((time.perf_counter() - t0) * 1000)
    n_points = ser.n

    # playback of the last demo day at 15 min/s (one frame per 100 ms tick), as fast as the page takes it
    call(view, "window.onemap.setTheme('command')")
    day = dt.datetime.fromisoformat(UNTIL).date() - dt.timedelta(days=1)
    t0 = time.perf_counter()
    pb = Playback(conn, day)
    pb_load = (time.perf_counter() - t0) * 1000
    view.set_layer_data("events", {"type": "FeatureCollection", "features": []})
    t = pb.start
    frames, t_frames = 0, time.perf_counter()
    while t < pb.end:
        delta = pb.frame(t)
        call(view, f"window.onemap.applyDelta({view._js_args(delta)})")
        frames += 1
        t += 90.0  # 15 min/s at 10 ticks/s
    rate = frames / (time.perf_counter() - t_frames)
    visible = pb.visible_count()
    # a dense day (≥ 5k events on the map): jump to the evening, then play the last hours
    dconn = connect(dense_replica())
    day = dt.datetime.fromisoformat(UNTIL).date() - dt.timedelta(days=1)
    pb = Playback(dconn, day)
    def rate_from(hour: int, frames_n: int = 120) -> tuple[float, int, int, int]:
        """Jump to ``hour`` o'clock, then play ``frames_n`` frames (90 simulated s each: 15 min/s
        at 10 ticks/s); returns (updates/s, events at start, at end, frames that changed events)."""
        pb.reset()
        view.set_layer_data("events", {"type": "FeatureCollection", "features": []})
        t = pb.start + hour * 3600
        call(view, f"window.onemap.applyDelta({view._js_args(pb.frame(t))})")
        start_n = call(view, "JSON.stringify(window.onemap.countFeatures('events'))")
        busy = 0
        t0 = time.perf_counter()
        for _ in range(frames_n):
            t += 90.0
            delta = pb.frame(t)
            busy += bool(delta.get("events"))
            call(view, f"window.onemap.applyDelta({view._js_args(delta)})")
        took = time.perf_counter() - t0
        return frames_n / took, start_n, call(view, "JSON.stringify(window.onemap.countFeatures('events'))"), busy

    rate_5k, n5a, n5b, busy5 = rate_from(9)
    rate_10k, n10a, n10b, busy10 = rate_from(19)

    rows = [
        ("theme switch, Python → page → Python (median / p95)",
         f"{median(switch_rt):.0f} / {pct(switch_rt, 95):.0f} ms", "≤ 500 ms"),
        ("theme switch inside the page (median / max)", f"{median(switch_page):.0f} / {max(switch_page):.0f} ms", "—"),
        (f"building layer: query + GeoJSON ({len(fc['features'])} buildings, median)", f"{median(py_ms):.1f} ms", "—"),
        ("building layer: draw in the page (setLayerData, median)", f"{median(draw):.0f} ms", "—"),
        (f"one station, 1 year hourly ({n_points:,} points): chart load (median / max of 20 stations)",
         f"{median(chart):.0f} / {max(chart):.0f} ms", "≤ 200 ms"),
        ("… of which reading the year (query + arrays, median)", f"{median(query):.0f} ms", "—"),
        ("playback: load the day (events + station classes)", f"{pb_load:.0f} ms", "—"),
        (f"playback frame rate over the whole day (ends with {visible:,} events)", f"{rate:.0f} updates/s", "≥ 10/s"),
        (f"playback 09:00–12:00 of a dense day, {n5a:,}–{n5b:,} events on the map, {busy5}/120 frames change events",
         f"{rate_5k:.0f} updates/s", "≥ 10/s with 5k"),
        (f"playback 19:00–22:00, {n10a:,}–{n10b:,} events on the map, {busy10}/120 frames change events",
         f"{rate_10k:.0f} updates/s", "—"),
        ("demo: one-maps part (320 buildings, 20 stations × 8,760 h, cameras)", f"{part_s:.1f} s", "—"),
    ]
    if gen_s is not None:
        rows.append(("demo: whole `onemap demo` (100k events) incl. one-maps", f"{gen_s:.1f} s", "≈ 40 s"))
    write_table("themes", "Three one-maps: themes, buildings, ecology chart, playback", rows,
                notes=f"Replica: {path.name} ({n_events:,} events on the command page at start). "
                "2 CPUs shared with other jobs; offscreen software rendering.")
    view.close()
    panel.close()
    app.processEvents()
    os._exit(0)  # skip PySide's teardown at interpreter exit (it can crash after a WebEngine page)


if __name__ == "__main__":
    main()
