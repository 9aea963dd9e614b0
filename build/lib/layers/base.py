"""What a map layer is, independent of Qt and of the page that draws it.

A :class:`Layer` describes one overlay: its key (also the key used by the page's
``onemap.setLayerData`` / ``applyDelta``), bilingual title, geometry kind, default
visibility, the zoom from which its labels show, and a style dict that the page's
JavaScript (``resources/web/onemap.js``) interprets.  Its data comes from a
``features(conn, scope)`` function returning a GeoJSON FeatureCollection as a Python
dict; ``scope`` is a street code, or ``None`` for the whole district.

Serialisation goes through orjson; :func:`json_for_html` makes JSON safe to embed
inside an HTML ``<script>`` element (``<``, ``>`` and ``&`` become ``\\u003c`` …), so
citizen text can never close the element or start markup.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson

Kind = Literal["polygons", "points", "lines"]
COORD_DIGITS = 6


class FeaturesFn(Protocol):
    """``features(conn, scope) -> FeatureCollection dict`` (scope: street code or None)."""

    def __call__(self, conn: sqlite3.Connection, scope: str | None = None, /) -> dict: ...


@dataclass(frozen=True)
class Layer:
    """One map overlay as the renderer and the page's JS see it.

    ``style`` keys understood by onemap.js (all optional):
    ``color weight opacity fillColor fillOpacity dashArray radius fill`` (Leaflet path options),
    ``glow`` (CSS drop-shadow on an SVG pane), ``fillBy`` ``{"prop", "breaks", "palette"}``
    (sequential classes: value < breaks[i] takes palette[i], the rest the last colour),
    ``colorBy`` ``{"prop", "map", "default"}``, ``radiusBy`` ``{"prop", "map", "default"}``,
    ``dimWhen`` ``{"prop", "equals", "style"}`` (extra options when a property has a value),
    ``label`` (property holding the label text), ``labelPoint`` (property holding [lon, lat]),
    ``labelClass`` (CSS class) and ``labelMaxZoom`` (labels hidden from this zoom on).
    """

    key: str
    title_zh: str
    title_en: str
    kind: Kind
    features: FeaturesFn | None = None
    visible: bool = True
    min_zoom: int | None = None
    """Labels show from this zoom level on; ``None`` means the layer has no labels."""
    style: Mapping[str, Any] = field(default_factory=dict)
    pane: str = "overlay"
    """``base`` (under everything), ``streets``, ``overlay`` (the one interactive canvas),
    ``district`` (glowing SVG outline), ``labels``."""
    interactive: bool = False
    in_control: bool = True
    """Listed in the layer control (a user can switch it on and off)."""

    def title(self, lang: str = "zh") -> str:
        return self.title_en if lang == "en" else self.title_zh

    def client_config(self, lang: str = "zh") -> dict[str, Any]:
        """The part of the description the page needs (no data)."""
        return {
            "key": self.key,
            "title": self.title(lang),
            "kind": self.kind,
            "visible": self.visible,
            "minZoom": self.min_zoom,
            "style": dict(self.style),
            "pane": self.pane,
            "interactive": self.interactive,
            "inControl": self.in_control,
        }


# -- GeoJSON helpers -------------------------------------------------------------------------


def feature_collection(features: Iterable[dict], **extra: Any) -> dict:
    fc: dict[str, Any] = {"type": "FeatureCollection", "features": list(features)}
    fc.update(extra)
    return fc


def point_feature(fid: Any, lon: float, lat: float, properties: dict) -> dict:
    return {
        "type": "Feature",
        "id": fid,
        "geometry": {"type": "Point", "coordinates": [round(lon, COORD_DIGITS), round(lat, COORD_DIGITS)]},
        "properties": properties,
    }


def _round_pts(pts: list, digits: int) -> list:
    return [[round(x, digits), round(y, digits), *rest] for x, y, *rest in pts]


_DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2, "MultiPolygon": 3}


def round_coords(coords: Any, digits: int = COORD_DIGITS, depth: int | None = None) -> Any:
    """Round every number in a (nested) GeoJSON coordinate array.

    ``depth`` is the nesting above point level (0 = one position, 1 = a list of positions,
    2 = rings, 3 = polygons); found by inspection when not given.
    """
    if depth is None:
        depth, probe = 0, coords
        while probe and isinstance(probe[0], list):
            depth, probe = depth + 1, probe[0]
    if depth == 0:
        return [round(c, digits) for c in coords]
    if depth == 1:
        return _round_pts(coords, digits)
    return [round_coords(c, digits, depth - 1) for c in coords]


def round_geometry(geom: Mapping[str, Any], digits: int = COORD_DIGITS) -> dict:
    if geom.get("type") == "GeometryCollection":
        return {"type": "GeometryCollection", "geometries": [round_geometry(g, digits) for g in geom["geometries"]]}
    return {
        "type": geom["type"],
        "coordinates": round_coords(list_coords(geom["coordinates"]), digits, _DEPTH.get(geom["type"])),
    }


def list_coords(coords: Any) -> Any:
    """Tuples (as from shapely's ``mapping``) → lists, recursively."""
    if isinstance(coords, tuple | list) and coords and isinstance(coords[0], tuple | list):
        return [list_coords(c) for c in coords]
    return list(coords) if isinstance(coords, tuple) else coords


_TOO_PRECISE = re.compile(rb"\.\d{%d}" % (COORD_DIGITS + 1))


def parse_geometry(text: str | bytes | None) -> dict | None:
    """A stored GeoJSON geometry (or Feature) column → geometry dict with coordinates rounded to
    6 decimals (skipped when the text has no number with more decimals); None when empty."""
    if not text:
        return None
    raw = text.encode("utf-8") if isinstance(text, str) else text
    obj = orjson.loads(raw)
    if obj.get("type") == "Feature":
        obj = obj.get("geometry")
    if obj is None:
        return None
    if _TOO_PRECISE.search(raw) is None:
        return obj
    return round_geometry(obj)


# -- serialisation ---------------------------------------------------------------------------

_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def dumps(obj: Any) -> bytes:
    """Compact JSON (orjson) as bytes."""
    return orjson.dumps(obj, option=_OPTS)


def dumps_str(obj: Any) -> str:
    return dumps(obj).decode("utf-8")


_HTML_UNSAFE = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def json_for_html(obj: Any) -> str:
    """JSON text safe inside ``<script>`` (and as a JS expression).

    ``<``, ``>`` and ``&`` can only occur inside JSON strings, where ``\\u003c`` etc. mean the
    same characters, so ``JSON.parse`` returns the original text while the HTML parser
    never sees ``</script>`` or a tag.
    """
    data = dumps(obj)
    for raw, esc in _HTML_UNSAFE:
        if raw in data:
            data = data.replace(raw, esc)
    return data.decode("utf-8")
