"""The 智能预警 evidence overlay (Qt-free): one warning's evidence as a GeoJSON FeatureCollection.

Features carry ``kind`` (``warning`` | ``event`` | ``person`` | ``device``), ``label`` (plain text:
the page renders it with ``textContent``), ``severity`` and, for events, ``event_id``. The page
draws them with ``resources/web/robot_overlay.js`` (``window.onemapRobot.show(fc)``), a
self-contained overlay on top of the theme's layers, and fits the view to them.
"""

from __future__ import annotations

from layers.base import feature_collection, point_feature

SEVERITY_COLOURS = {1: "#ff6e76", 2: "#ff8a45", 3: "#fddd60", 4: "#4992ff"}
OVERLAY_JS = "robot_overlay.js"


def evidence_features(warning: dict, details: dict) -> dict:
    """``warning`` from :func:`app.robot.views.warning_dict`; ``details`` from
    :func:`app.robot.views.evidence_details`."""
    feats = []
    sev = warning.get("severity", 3)
    colour = SEVERITY_COLOURS.get(sev, "#fddd60")
    for e in details.get("events", []):
        if e.get("lon") is None:
            continue
        feats.append(point_feature(f"e{e['id']}", e["lon"], e["lat"], {
            "kind": "event", "event_id": e["id"], "label": f"#{e['id']} {e.get('title') or ''}",
            "color": colour, "severity": sev}))  # fmt: skip
    for p in details.get("people", []):
        if p.get("lon") is not None:
            feats.append(point_feature(f"p{len(feats)}", p["lon"], p["lat"], {"kind": "person", "label": p["label"], "color": "#00E4FF",
                                                            "severity": sev}))  # fmt: skip
    for d in details.get("devices", []):
        if d.get("lon") is not None:
            feats.append(point_feature(f"d{d['uid']}", d["lon"], d["lat"], {"kind": "device", "label": d.get("name") or d["uid"],
                                                            "color": "#B9B8CE", "severity": sev}))  # fmt: skip
    loc = warning.get("location")
    if loc and not feats:
        feats.append(point_feature("w", loc["lon"], loc["lat"], {"kind": "warning", "label": warning.get("rule_zh", ""),
                                                            "color": colour, "severity": sev}))  # fmt: skip
    return feature_collection(feats)
