/* OneMap Console map page: layers, labels, controls, deltas and the Python bridge.
 *
 * The page (layers/render.py) embeds one JSON document, #onemap-config, and calls
 * onemap.init(mapName) after folium has created the Leaflet map.  Every text that
 * can come from citizens or staff is put into the DOM with textContent only; Leaflet
 * overlays get DOM nodes, never HTML strings.  Functions that return objects return
 * JSON text (PySide6 turns JS objects into '').
 */
(function () {
  'use strict';

  var om = window.onemap = window.onemap || {};
  om.ready = false;
  om.bridge = null;
  om.uiScale = 1;
  om.animate = true;
  var zoomFactor = 1;

  var map = null, cfg = null, I = {};
  var layers = {};            // key -> {cfg, group, byId: Map, labels}
  var order = [];             // layer keys in draw order
  var renderers = {};
  var tooltip = null, popup = null, popupEventId = null;
  var highlight = null, selectedGrid = null;
  var tileLayer = null, watermark = null;
  var layerCtl = null, legendCtl = null, theme = null, userFilters = {};
  var PANES = { base: 250, streets: 410, district: 420, labels: 450, highlight: 460 };
  var PATH_KEYS = ['stroke', 'color', 'weight', 'opacity', 'fill', 'fillColor', 'fillOpacity', 'dashArray', 'radius'];

  // -- small helpers ---------------------------------------------------------------------
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function extend(a, b) { for (var k in b) { if (Object.prototype.hasOwnProperty.call(b, k)) { a[k] = b[k]; } } return a; }
  function fid(f) {
    if (!f) { return null; }
    if (f.id !== undefined && f.id !== null) { return String(f.id); }
    var p = f.properties || {};
    return (p.id !== undefined && p.id !== null) ? String(p.id) : null;
  }
  function paneName(p) { return (p && p !== 'overlay') ? 'om-' + p : 'overlayPane'; }
  function parse(data) { return (typeof data === 'string') ? JSON.parse(data) : data; }
  function classIndex(v, breaks) {
    var x = Number(v) || 0;
    for (var i = 0; i < breaks.length; i++) { if (x < breaks[i]) { return i; } }
    return breaks.length;
  }
  function tr(group, key) { return (I[group] && I[group][key] !== undefined) ? I[group][key] : key; }
  function shortTime(ts) { return ts ? String(ts).slice(5, 16).replace('T', ' ') : ''; }
  function escapeText(s) {
    return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  }

  // -- Python bridge (QWebChannel) --------------------------------------------------------
  function initBridge() {
    if (typeof QWebChannel === 'undefined' || !window.qt || !window.qt.webChannelTransport) { return; }
    try {
      new QWebChannel(window.qt.webChannelTransport, function (channel) {
        om.bridge = channel.objects.bridge || null;
      });
    } catch (err) { console.error('onemap: QWebChannel failed: ' + err); }
  }
  function callBridge(name, arg) {
    if (om.bridge && typeof om.bridge[name] === 'function') { om.bridge[name](arg); }
  }

  // -- filters (theme filters and the user's, e.g. economy industry / street) ---------------
  function passOne(flt, p) {
    if (!flt) { return true; }
    var v = p[flt.prop];
    if (flt.prefix !== undefined) { return v !== undefined && v !== null && String(v).indexOf(flt.prefix) === 0; }
    if (flt['in']) { return flt['in'].indexOf(v) >= 0 || flt['in'].indexOf(String(v)) >= 0; }
    return true;
  }
  function passes(key, p) {
    var t = theme && cfg.themes && cfg.themes[theme];
    if (t && t.filters && !passOne(t.filters[key], p)) { return false; }
    var u = userFilters[key];
    if (u) { for (var i = 0; i < u.length; i++) { if (!passOne(u[i], p)) { return false; } } }
    return true;
  }

  // -- styles ---------------------------------------------------------------------------
  function featureStyle(lc, f) {
    var s = lc.style || {}, p = (f && f.properties) || {}, o = {}, i;
    for (i = 0; i < PATH_KEYS.length; i++) { if (s[PATH_KEYS[i]] !== undefined) { o[PATH_KEYS[i]] = s[PATH_KEYS[i]]; } }
    if (s.fillBy) {
      var ci = classIndex(p[s.fillBy.prop], s.fillBy.breaks);
      o.fill = true;
      o.fillColor = s.fillBy.palette[Math.min(ci, s.fillBy.palette.length - 1)];
      if (s.fillBy.opacity) { o.fillOpacity = s.fillBy.opacity[Math.min(ci, s.fillBy.opacity.length - 1)]; }
    }
    if (s.colorBy) {
      var c = s.colorBy.map[String(p[s.colorBy.prop])];
      o[s.colorBy.target || 'color'] = c || s.colorBy['default'];
    }
    if (s.fillColorBy) {
      o.fillColor = s.fillColorBy.map[String(p[s.fillColorBy.prop])] || s.fillColorBy['default'];
    }
    if (s.radiusProp && p[s.radiusProp] !== undefined) { o.radius = p[s.radiusProp]; }
    if (s.radiusBy) {
      var r = s.radiusBy.map[String(p[s.radiusBy.prop])];
      o.radius = (r !== undefined) ? r : s.radiusBy['default'];
    }
    if (s.dimWhen && p[s.dimWhen.prop] === s.dimWhen.equals) {
      extend(o, s.dimWhen.style);
      if (o.colorFromFill) { o.color = o.fillColor; }
    }
    delete o.colorFromFill;
    var due = (s.dueRing && p.open) ? dueState(p) : null;
    if (f) { f._omDue = due; }               // what the clock last showed (see restyleDue)
    if (due && s.dueRing[due]) { extend(o, s.dueRing[due]); }   // overdue / soon-due events get a ring
    if (s.drill && p.drill) { extend(o, s.drill); }
    if (s.selected && lc.key === 'grids' && selectedGrid !== null && fid(f) === selectedGrid) { extend(o, s.selected); }
    if (!passes(lc.key, p) || (s.maxZoom !== undefined && map && map.getZoom() >= s.maxZoom)) {
      return { stroke: false, fill: false, opacity: 0, fillOpacity: 0, radius: 0 };
    }
    if (lc.kind === 'points') {
      o.radius = (o.radius || 5) * om.uiScale * zoomFactor;
      if (o.weight) { o.weight = o.weight * om.uiScale; }
    }
    return o;
  }

  // -- layers ---------------------------------------------------------------------------
  function makePanes() {
    Object.keys(PANES).forEach(function (k) {
      var p = map.createPane('om-' + k);
      p.style.zIndex = PANES[k];
      p.style.pointerEvents = 'none';   // only the overlay canvas takes clicks
    });
    renderers.base = L.canvas({ pane: 'om-base', padding: 0.3 });
    renderers.streets = L.canvas({ pane: 'om-streets', padding: 0.3 });
    renderers.district = L.svg({ pane: 'om-district', padding: 0.3 });
    renderers.overlay = L.canvas({ pane: 'overlayPane', padding: 0.3, tolerance: 3 });
    map.options.renderer = renderers.overlay;   // anything else vector shares the one interactive canvas
  }

  function buildLayer(lc, data) {
    var entry = { cfg: lc, byId: new Map(), group: null, labels: null };
    var renderer = renderers[lc.pane] || renderers.overlay;
    var opts = {
      pane: paneName(lc.pane),
      renderer: renderer,
      interactive: !!lc.interactive,
      bubblingMouseEvents: false,
      style: function (f) { return featureStyle(lc, f); },
      onEachFeature: function (f, layer) {
        var id = fid(f);
        if (id !== null) { entry.byId.set(id, layer); }
      }
    };
    if (lc.kind === 'points') {
      opts.pointToLayer = function (f, latlng) {
        return L.circleMarker(latlng, { renderer: renderer, pane: opts.pane, interactive: opts.interactive,
          bubblingMouseEvents: false });
      };
    }
    entry.group = L.geoJSON(null, opts);
    if (data) { entry.group.addData(parse(data)); }
    if (lc.style && lc.style.label && lc.minZoom !== null && lc.minZoom !== undefined) {
      entry.labels = L.layerGroup();
    }
    if (lc.interactive) { wireEvents(entry); }
    layers[lc.key] = entry;
    order.push(lc.key);
    if (lc.visible) { entry.group.addTo(map); }
    return entry;
  }

  function pointLayersToFront() {
    order.forEach(function (k) {
      var e = layers[k];
      if (e.cfg.kind === 'points' && map.hasLayer(e.group)) { e.group.bringToFront(); }
    });
  }

  // -- labels (DOM markers in a pane that ignores the mouse) -------------------------------
  function labelPoint(lc, layer) {
    var p = layer.feature.properties || {}, lp = lc.style.labelPoint ? p[lc.style.labelPoint] : null;
    if (lp && lp.length === 2) { return L.latLng(lp[1], lp[0]); }
    if (layer.getLatLng) { return layer.getLatLng(); }
    return layer.getBounds().getCenter();
  }

  function refreshLabels(entry) {
    if (!entry.labels) { return; }
    var lc = entry.cfg;
    entry.labels.clearLayers();
    var z = map.getZoom(), maxZ = lc.style.labelMaxZoom;
    if (!map.hasLayer(entry.group) || z < lc.minZoom || (maxZ !== undefined && maxZ !== null && z >= maxZ)) {
      if (map.hasLayer(entry.labels)) { map.removeLayer(entry.labels); }
      return;
    }
    var view = map.getBounds().pad(0.15), n = 0;
    entry.group.eachLayer(function (layer) {
      if (n > 1500) { return; }
      var ll = labelPoint(lc, layer);
      if (!view.contains(ll)) { return; }
      if (!passes(lc.key, layer.feature.properties || {})) { return; }
      var text = (layer.feature.properties || {})[lc.style.label];
      if (text === undefined || text === null || text === '') { return; }
      var node = el('div', 'om-label ' + (lc.style.labelClass || ''), text);
      entry.labels.addLayer(L.marker(ll, {
        icon: L.divIcon({ className: 'om-label-icon', html: node, iconSize: null }),
        pane: 'om-labels', interactive: false, keyboard: false
      }));
      n++;
    });
    if (!map.hasLayer(entry.labels)) { entry.labels.addTo(map); }
  }
  function refreshAllLabels() { order.forEach(function (k) { refreshLabels(layers[k]); }); }

  // points shrink at district zoom levels so that dense areas stay readable
  function zoomFactorFor(z) { return z < 12.5 ? 0.65 : (z < 14 ? 0.8 : 1); }
  function restylePoints() {
    order.forEach(function (k) {
      var e = layers[k];
      if (e.cfg.kind === 'points') { e.group.eachLayer(function (l) { e.group.resetStyle(l); }); }
    });
  }
  // clock state from the deadlines carried as epoch ms (hdue: handling, adue: arrival while nobody
  // is on site); evaluated in the page so the rings follow the clock without new data
  var SOON_MS = 2 * 3600 * 1000;
  function dueState(p) {
    var now = Date.now();
    if ((p.hdue && p.hdue < now) || (p.adue && p.adue < now)) { return 'overdue'; }
    if (p.hdue && p.hdue - now < SOON_MS) { return 'soon'; }
    return null;
  }
  // the clock tick restyles only the markers whose due state changed: restyling every marker
  // each 30 s left ~2 KB of garbage per marker in V8's old space, which a wall running for hours
  // saw as steady renderer growth (bench/soak_wall.py)
  function restyleDue() {
    var n = 0;
    order.forEach(function (k) {
      var e = layers[k];
      if (e.cfg.kind !== 'points' || !e.cfg.style || !e.cfg.style.dueRing) { return; }
      e.group.eachLayer(function (l) {
        var f = l.feature, p = (f && f.properties) || {};
        if ((p.open ? dueState(p) : null) !== f._omDue) { e.group.resetStyle(l); n++; }
      });
    });
    return n;
  }
  om.restyleDue = restyleDue;
  var aboveMax = {};
  function onZoomEnd() {
    var f = zoomFactorFor(map.getZoom());
    if (f !== zoomFactor) { zoomFactor = f; restylePoints(); }
    order.forEach(function (k) {          // layers that hide from a zoom on (e.g. building dots)
      var mz = layers[k].cfg.style && layers[k].cfg.style.maxZoom;
      if (mz === undefined) { return; }
      var above = map.getZoom() >= mz;
      if (aboveMax[k] !== above) { aboveMax[k] = above; restyleAll(k); }
    });
  }

  // -- tooltips, popups, clicks ------------------------------------------------------------
  function row(table, label, value, cls) {
    var tr_ = el('tr'), th = el('th', null, label), td = el('td', cls || null, value);
    tr_.appendChild(th); tr_.appendChild(td); table.appendChild(tr_);
    return td;
  }

  function eventCard(f) {
    var p = f.properties || {}, card = el('div', 'om-card');
    var head = el('div', 'om-card-head');
    var chip = el('span', 'om-chip om-chip-' + (p['class'] || 'ordinary'), tr('classes', p['class']));
    head.appendChild(chip);
    head.appendChild(el('span', 'om-card-title', p.title));
    card.appendChild(head);
    var t = el('table', 'om-card-table');
    row(t, I.eventNo, p.id);
    row(t, I.priority, tr('priorities', String(p.priority)));
    row(t, I.status, tr('statuses', p.status), p.open ? 'om-open' : 'om-closed');
    row(t, I.category, (cfg.categories && cfg.categories[p.category]) || p.category);
    row(t, I.reported, shortTime(p.reported_at));
    card.appendChild(t);
    if (p.drill) { card.appendChild(el('div', 'om-drill-tag', I.drillTag)); }
    return card;
  }

  function tipContent(lc, f) {
    var p = f.properties || {}, box = el('div', 'om-tipbox');
    if (lc.key === 'events') {
      box.appendChild(el('div', 'om-tip-title', p.title));
      box.appendChild(el('div', 'om-tip-sub', tr('classes', p['class']) + ' · ' + tr('priorities', String(p.priority)) +
        ' · ' + tr('statuses', p.status)));
    } else if (lc.key === 'grids') {
      box.appendChild(el('div', 'om-tip-title', p.name));
      box.appendChild(el('div', 'om-tip-sub', [p.street, p.community].filter(Boolean).join(' · ')));
      box.appendChild(el('div', 'om-tip-sub', I.open + ' ' + (p.open || 0)));
    } else if (lc.key === 'staff') {
      box.appendChild(el('div', 'om-tip-title', I.staff + ' ' + (p.name || '')));
      box.appendChild(el('div', 'om-tip-sub', [p.grid_id, p.status].filter(Boolean).join(' · ')));
    } else if (lc.key === 'devices') {
      box.appendChild(el('div', 'om-tip-title', p.name));
      box.appendChild(el('div', 'om-tip-sub', tr('devices', p.kind) + ' · ' + (p.online ? I.online : I.offline)));
    } else if (lc.key === 'buildings') {
      box.appendChild(el('div', 'om-tip-title', p.name));
      box.appendChild(el('div', 'om-tip-sub', [p.industry_name, p.street].filter(Boolean).join(' \u00b7 ')));
      box.appendChild(el('div', 'om-tip-sub', tr('eco', 'tax') + ' ' + Number(p.tax_wan).toLocaleString() + ' ' +
        tr('eco', 'wan') + ' \u00b7 ' + tr('eco', 'taxM2') + ' ' + Math.round(p.tax_m2) + ' \u00b7 ' +
        tr('eco', 'occ') + ' ' + Math.round(p.occupancy * 100) + '%'));
      box.appendChild(el('div', 'om-tip-sub', p.floors + tr('eco', 'floors') + ' \u00b7 ' + p.enterprises + ' ' +
        tr('eco', 'ents') + (p.yiyuan ? ' \u00b7 ' + tr('eco', 'yiyuan') : '')));
    } else if (lc.key === 'eco_stations') {
      box.appendChild(el('div', 'om-tip-title', p.code + ' ' + p.name));
      box.appendChild(el('div', 'om-tip-sub', (p.cls ? p.cls_label : tr('eco', 'invalid')) + ' \u00b7 ' + shortTime(p.at)));
      if (p.ph_ok === false) { box.appendChild(el('div', 'om-tip-sub', tr('eco', 'phFail'))); }
    } else if (lc.key === 'eco_cameras') {
      box.appendChild(el('div', 'om-tip-title', p.name));
      box.appendChild(el('div', 'om-tip-sub', [p.segment, p.status === 'online' ? I.online : I.offline].join(' \u00b7 ')));
    } else if (lc.key === 'shoreline') {
      box.appendChild(el('div', 'om-tip-title', p.name));
      box.appendChild(el('div', 'om-tip-sub', tr('eco', 'resp') + ' ' + (p.grid || p.grid_id || '') + ' \u00b7 ' + p.length_m + ' m'));
    } else {
      box.appendChild(el('div', 'om-tip-title', p.name || fid(f) || lc.title));
    }
    return box;
  }

  function wireEvents(entry) {
    var lc = entry.cfg;
    entry.group.on('mouseover', function (e) {
      var layer = e.propagatedFrom || e.layer;
      if (!layer || !layer.feature) { return; }
      tooltip.setContent(tipContent(lc, layer.feature));
      tooltip.setLatLng(layer.getLatLng ? layer.getLatLng() : e.latlng);
      map.openTooltip(tooltip);
    });
    entry.group.on('mouseout', function () { map.closeTooltip(tooltip); });
    entry.group.on('click', function (e) {
      var layer = e.propagatedFrom || e.layer;
      if (!layer || !layer.feature) { return; }
      var id = fid(layer.feature);
      map.closeTooltip(tooltip);
      if (lc.key === 'events') {
        openPopupFor(layer);
        callBridge('eventClicked', parseInt(id, 10));
      } else if (lc.key === 'grids') {
        om.selectGrid(id);
        callBridge('gridClicked', String(id));
      } else if (om.bridge && typeof om.bridge.featureClicked === 'function') {
        om.bridge.featureClicked(lc.key, String(id));
      }
    });
  }

  function openPopupFor(layer) {
    popupEventId = fid(layer.feature);
    popup.setLatLng(layer.getLatLng()).setContent(eventCard(layer.feature)).openOn(map);
  }

  // -- highlight (ring that pulses a few times, then holds) ------------------------------
  function setHighlight(latlng) {
    if (highlight) { map.removeLayer(highlight); highlight = null; }
    if (!latlng) { return; }
    var ring = el('div', 'om-ring');
    ring.appendChild(el('div', 'om-ring-pulse'));
    highlight = L.marker(latlng, {
      icon: L.divIcon({ className: 'om-ring-icon', html: ring, iconSize: [0, 0] }),
      pane: 'om-highlight', interactive: false, keyboard: false
    }).addTo(map);
  }

  // -- controls ---------------------------------------------------------------------------
  function themeCfg() { return (theme && cfg.themes) ? cfg.themes[theme] : null; }

  function buildLayerControl() {
    if (layerCtl) { map.removeControl(layerCtl); layerCtl = null; }
    var overlays = {}, t = themeCfg();
    if (tileLayer) { overlays[cfg.tiles.title] = tileLayer; }
    order.forEach(function (k) {
      var e = layers[k];
      if (!e.cfg.inControl) { return; }
      if (t && t.layers.indexOf(k) < 0) { return; }
      overlays[e.cfg.title] = e.group;
    });
    layerCtl = L.control.layers(null, overlays, { collapsed: false, position: 'topright' }).addTo(map);
    var box = layerCtl.getContainer();
    box.classList.add('om-panel');
    box.insertBefore(el('div', 'om-panel-title', I.layers), box.firstChild);
  }

  function commandLegend(d) {
    var grids = layers.grids && layers.grids.cfg.style.fillBy;
    if (grids) {
      d.appendChild(el('div', 'om-legend-sub', I.gridLegend));
      var b = grids.breaks, row_ = el('div', 'om-legend-ramp');
      for (var i = 0; i <= b.length; i++) {
        var lo = i === 0 ? 0 : b[i - 1], hi = i < b.length ? b[i] - 1 : null;
        var label = hi === null ? lo + '+' : (lo === hi ? String(lo) : lo + '\u2013' + hi);
        var cell = el('div', 'om-legend-cell');
        var sw = el('span', 'om-swatch');
        sw.style.background = grids.palette[Math.min(i, grids.palette.length - 1)];
        if (grids.opacity) { sw.style.opacity = Math.min(1, grids.opacity[Math.min(i, grids.opacity.length - 1)] + 0.3); }
        cell.appendChild(sw); cell.appendChild(el('span', null, label));
        row_.appendChild(cell);
      }
      d.appendChild(row_);
    }
    if (layers.events) {
      d.appendChild(el('div', 'om-legend-sub', I.eventLegend));
      ['emergency', 'assigned', 'ordinary'].forEach(function (c) {
        var it = el('div', 'om-legend-item'), dot = el('span', 'om-dot');
        dot.style.background = cfg.classColours[c];
        it.appendChild(dot); it.appendChild(el('span', null, tr('classes', c)));
        d.appendChild(it);
      });
      var it = el('div', 'om-legend-item'), dot = el('span', 'om-dot om-dot-dim');
      it.appendChild(dot); it.appendChild(el('span', null, I.closed));
      d.appendChild(it);
      [['#ff6e76', I.overdue], ['#fddd60', I.soon]].forEach(function (r) {
        var ring = el('div', 'om-legend-item'), o = el('span', 'om-dot');
        o.style.background = 'transparent'; o.style.border = '2px solid ' + r[0];
        ring.appendChild(o); ring.appendChild(el('span', null, r[1]));
        d.appendChild(ring);
      });
    }
  }

  // sections: [{title, items: [{color, label, kind: dot|box|outline|line|square}], ramp}]
  function sectionsLegend(d, sections) {
    sections.forEach(function (sec) {
      if (sec.title) { d.appendChild(el('div', 'om-legend-sub', sec.title)); }
      (sec.items || []).forEach(function (it) {
        var row_ = el('div', 'om-legend-item'), sw = el('span', it.kind === 'dot' ? 'om-dot' : 'om-swatch');
        if (it.kind === 'outline') { sw.style.background = 'transparent'; sw.style.border = '2px solid ' + it.color; }
        else if (it.kind === 'line') { sw.style.background = it.color; sw.style.height = '3px'; }
        else { sw.style.background = it.color; }
        row_.appendChild(sw); row_.appendChild(el('span', null, it.label));
        d.appendChild(row_);
      });
    });
  }

  function buildLegend(sections) {
    if (legendCtl) { map.removeControl(legendCtl); legendCtl = null; }
    var t = themeCfg();
    if (sections === undefined) { sections = t ? t.legend : 'command'; }
    var Legend = L.Control.extend({
      options: { position: 'bottomright' },
      onAdd: function () {
        var d = el('div', 'om-panel om-legend');
        d.appendChild(el('div', 'om-panel-title', I.legend + (t ? ' \u00b7 ' + t.title : '')));
        if (sections === 'command' || !sections) { commandLegend(d); } else { sectionsLegend(d, sections); }
        return d;
      }
    });
    legendCtl = new Legend().addTo(map);
  }

  function addControls() {
    buildLayerControl();
    buildLegend();

    var Coords = L.Control.extend({
      options: { position: 'bottomleft' },
      onAdd: function () {
        var d = el('div', 'om-panel om-coords');
        d.textContent = I.lon + ' \u2014  ' + I.lat + ' \u2014';
        map.on('mousemove', function (e) {
          d.textContent = I.lon + ' ' + e.latlng.lng.toFixed(5) + '  ' + I.lat + ' ' + e.latlng.lat.toFixed(5);
        });
        return d;
      }
    });
    new Coords().addTo(map);

    if (map.attributionControl) {
      map.attributionControl.setPrefix('Leaflet');
      map.attributionControl.addAttribution(escapeText(cfg.attribution));
    }
  }

  function fitHome() {
    var size = map.getSize();
    if (size.x > 0 && size.y > 0) {
      map.fitBounds(cfg.bounds, { padding: [12, 12], animate: false });
      return true;
    }
    return false;
  }

  // -- public API -----------------------------------------------------------------------------
  om.init = function (mapName) {
    var t0 = performance.now();
    om.timings = {};
    map = window[mapName];
    om.map = map;
    var cfgNode = document.getElementById('onemap-config');
    cfg = JSON.parse(cfgNode.textContent);
    cfgNode.parentNode.removeChild(cfgNode);   // the layers keep the data; free the text
    om.timings.parse = performance.now() - t0;
    I = cfg.i18n || {};
    om.config = cfg;
    theme = cfg.theme || null;
    document.title = cfg.title || document.title;
    map.getContainer().classList.add('om-map');
    map.options.zoomSnap = 0.25;
    if (!fitHome()) { map.once('resize', fitHome); }   // before the layers: one first draw
    zoomFactor = zoomFactorFor(map.getZoom());
    makePanes();
    tooltip = L.tooltip({ direction: 'top', offset: [0, -8], className: 'om-tip', opacity: 1 });
    popup = L.popup({ className: 'om-popup', maxWidth: 380, minWidth: 220,
      autoPanPaddingTopLeft: [60, 40], autoPanPaddingBottomRight: [300, 260] });
    map.on('popupclose', function () { popupEventId = null; });
    if (cfg.tiles && cfg.tiles.url) {
      tileLayer = L.tileLayer(cfg.tiles.url, {
        className: cfg.tiles.invert ? 'om-tiles-inverted' : '', maxZoom: 19, attribution: ''
      }).addTo(map);
    }
    setInterval(restyleDue, 30000);   // due rings follow the clock
    (cfg.layers || []).forEach(function (lc) {
      var t1 = performance.now();
      buildLayer(lc, cfg.data ? cfg.data[lc.key] : null);
      om.timings[lc.key] = performance.now() - t1;
    });
    cfg.data = null;   // the layers hold the features now (built in draw order)
    addControls();
    watermark = el('div', 'om-drill-watermark');
    watermark.appendChild(el('div', 'om-drill-banner', I.drill));
    watermark.appendChild(el('div', 'om-drill-text', I.drill));
    map.getContainer().appendChild(watermark);

    map.on('zoomend', onZoomEnd);
    map.on('zoomend moveend', refreshAllLabels);
    map.on('overlayadd', function (e) {
      order.forEach(function (k) {
        var en = layers[k];
        if (en.group === e.layer && en.cfg.kind !== 'points' && (en.cfg.pane || 'overlay') === 'overlay') { pointLayersToFront(); }
      });
      refreshAllLabels();
    });
    map.on('overlayremove', refreshAllLabels);
    refreshAllLabels();
    initBridge();
    om.timings.init = performance.now() - t0;
    om.ready = true;
    return true;
  };

  om.setLayerData = function (key, geojson) {
    var entry = layers[key];
    if (!entry) { return -1; }
    entry.group.clearLayers();
    entry.byId.clear();
    if (geojson) { entry.group.addData(parse(geojson)); }
    if (entry.cfg.kind !== 'points' && (entry.cfg.pane || 'overlay') === 'overlay') { pointLayersToFront(); }
    refreshLabels(entry);
    return entry.group.getLayers().length;
  };

  om.applyDelta = function (delta) {
    delta = parse(delta) || {};
    var res = { upserted: 0, removed: 0, recoloured: 0 };
    Object.keys(delta).forEach(function (key) {
      var entry = layers[key], part = delta[key];
      if (!entry || !part) { return; }
      if (part.replace) { om.setLayerData(key, part.replace); }
      (part.remove || []).forEach(function (id) {
        var sid = String(id), layer = entry.byId.get(sid);
        if (!layer) { return; }
        entry.group.removeLayer(layer);
        entry.byId['delete'](sid);
        if (key === 'events' && popupEventId === sid) { map.closePopup(popup); }
        res.removed++;
      });
      (part.upsert || []).forEach(function (f) {
        var sid = fid(f), layer = sid !== null ? entry.byId.get(sid) : null;
        if (layer) {
          var before = JSON.stringify(featureStyle(entry.cfg, layer.feature));
          layer.feature = f;
          if (layer.setLatLng && f.geometry && f.geometry.type === 'Point') {
            var ll0 = layer.getLatLng(), c = f.geometry.coordinates;
            if (ll0.lat !== c[1] || ll0.lng !== c[0]) { layer.setLatLng([c[1], c[0]]); }
          }
          // only what looks different is redrawn (a status step inside 'open' keeps its look)
          if (JSON.stringify(featureStyle(entry.cfg, f)) !== before) { entry.group.resetStyle(layer); }
          if (key === 'events' && popupEventId === sid) { popup.setContent(eventCard(f)); }
        } else {
          entry.group.addData(f);
        }
        res.upserted++;
      });
      if (part.props) {                      // {id: {prop: value}}: e.g. station classes in playback
        Object.keys(part.props).forEach(function (id) {
          var layer = entry.byId.get(String(id));
          if (!layer) { return; }
          extend(layer.feature.properties, part.props[id]);
          entry.group.resetStyle(layer);
          res.recoloured++;
        });
      }
      if (part.counts) {
        var prop = (entry.cfg.style && entry.cfg.style.fillBy && entry.cfg.style.fillBy.prop) || 'open';
        Object.keys(part.counts).forEach(function (id) {
          var layer = entry.byId.get(String(id));
          if (!layer) { return; }
          layer.feature.properties[prop] = part.counts[id];
          entry.group.resetStyle(layer);
          res.recoloured++;
        });
      }
    });
    return JSON.stringify(res);
  };

  om.flyTo = function (lon, lat, zoom, eventId) {
    var ll = null, marker = null;
    if (eventId !== undefined && eventId !== null && layers.events) {
      marker = layers.events.byId.get(String(eventId)) || null;
    }
    if (lon !== undefined && lon !== null && lat !== undefined && lat !== null) { ll = L.latLng(lat, lon); }
    else if (marker) { ll = marker.getLatLng(); }
    if (!ll) { return false; }
    var z = (zoom === undefined || zoom === null) ? Math.max(map.getZoom(), 17) : zoom;
    if (om.animate && !document.hidden) { map.flyTo(ll, z, { duration: 1.2 }); }
    else { map.setView(ll, z, { animate: false }); }
    if (marker || eventId !== undefined && eventId !== null) {
      setHighlight(marker ? marker.getLatLng() : ll);
      if (marker && marker.bringToFront) { marker.bringToFront(); }
    } else {
      setHighlight(null);
    }
    return true;
  };

  om.clearHighlight = function () { setHighlight(null); return true; };

  om.openEventPopup = function (eventId) {
    var layer = layers.events && layers.events.byId.get(String(eventId));
    if (!layer) { return false; }
    openPopupFor(layer);
    return true;
  };

  om.selectGrid = function (id) {
    var entry = layers.grids, prev = selectedGrid;
    selectedGrid = (id === null || id === undefined) ? null : String(id);
    if (!entry) { return false; }
    [prev, selectedGrid].forEach(function (g) {
      var layer = g !== null ? entry.byId.get(g) : null;
      if (layer) { entry.group.resetStyle(layer); }
    });
    return selectedGrid !== null && entry.byId.has(selectedGrid);
  };

  om.countFeatures = function (key) {
    var entry = layers[key];
    return entry ? entry.group.getLayers().length : -1;
  };

  om.setDrillWatermark = function (on) {
    if (watermark) { watermark.style.display = on ? 'block' : 'none'; }
    map.getContainer().classList.toggle('om-drill', !!on);
    return !!on;
  };

  om.setLayerVisible = function (key, on) {
    var entry = layers[key];
    if (!entry) { return false; }
    if (on && !map.hasLayer(entry.group)) { entry.group.addTo(map); map.fire('overlayadd', { layer: entry.group }); }
    if (!on && map.hasLayer(entry.group)) { map.removeLayer(entry.group); map.fire('overlayremove', { layer: entry.group }); }
    return map.hasLayer(entry.group);
  };

  om.setUiScale = function (u) {
    om.uiScale = Number(u) > 0 ? Number(u) : 1;
    document.documentElement.style.setProperty('--om-u', String(om.uiScale));
    restylePoints();
    refreshAllLabels();
    return om.uiScale;
  };

  om.home = function () { return fitHome(); };

  // canvases are drawn (1 + 2 × padding)² the map's size so that panning shows no edges; the wall
  // hardly pans, and on a wall-wide map each canvas frame costs the renderer ~15 MiB at 0.3
  om.setCanvasPadding = function (p) {
    p = Math.max(0, Number(p) || 0);
    Object.keys(renderers).forEach(function (k) {
      var r = renderers[k];
      r.options.padding = p;
      if (r._map) { r._reset(); }
    });
    return p;
  };

  // -- themes (QGIS-like map themes: visible layers, filters, legend) ---------------------
  function restyleAll(key) {
    var e = layers[key];
    if (!e) { return; }
    e.group.eachLayer(function (l) { e.group.resetStyle(l); });
  }

  om.setTheme = function (name) {
    var t0 = performance.now();
    var t = cfg.themes && cfg.themes[name];
    if (!t) { return JSON.stringify({ ok: false, theme: theme }); }
    var prev = theme;
    theme = name;
    order.forEach(function (k) {
      var e = layers[k];
      if (e.cfg.pane === 'base' || k === 'district') { return; }
      var on = t.visible.indexOf(k) >= 0;
      if (on && !map.hasLayer(e.group)) { e.group.addTo(map); }
      if (!on && map.hasLayer(e.group)) { map.removeLayer(e.group); }
    });
    // filters may differ between themes: restyle the layers that carry one
    var prevT = prev && cfg.themes[prev];
    Object.keys(layers).forEach(function (k) {
      if ((t.filters && t.filters[k]) || (prevT && prevT.filters && prevT.filters[k])) { restyleAll(k); }
    });
    pointLayersToFront();
    buildLayerControl();
    buildLegend();
    refreshAllLabels();
    document.title = (cfg.title || '').split(' · ')[0] + ' · ' + (t.short || t.title);
    return JSON.stringify({ ok: true, theme: theme, ms: performance.now() - t0 });
  };

  om.addTheme = function (name, themeCfg_) {
    cfg.themes[name] = parse(themeCfg_);
    return true;
  };

  om.setLayerStyle = function (key, patch) {
    var e = layers[key];
    if (!e) { return false; }
    e.cfg.style = extend(extend({}, e.cfg.style), parse(patch) || {});
    restyleAll(key);
    return true;
  };

  om.setFilter = function (key, filters) {
    filters = parse(filters);
    if (!filters || !filters.length) { delete userFilters[key]; } else { userFilters[key] = filters; }
    restyleAll(key);
    if (layers[key]) { refreshLabels(layers[key]); }
    var n = 0;
    if (layers[key]) { layers[key].group.eachLayer(function (l) { if (passes(key, l.feature.properties || {})) { n++; } }); }
    return n;
  };

  om.setLegend = function (sections) { buildLegend(parse(sections)); return true; };

  om.featureBounds = function (key, id) {
    var e = layers[key], l = e && e.byId.get(String(id));
    if (!l) { return ''; }
    var b = l.getBounds ? l.getBounds() : L.latLngBounds([l.getLatLng(), l.getLatLng()]);
    return JSON.stringify([[b.getSouth(), b.getWest()], [b.getNorth(), b.getEast()]]);
  };

  om.state = function () {
    var counts = {};
    order.forEach(function (k) { counts[k] = layers[k].group.getLayers().length; });
    var c = map.getCenter();
    var visible = order.filter(function (k) { return map.hasLayer(layers[k].group); });
    return JSON.stringify({ center: { lat: c.lat, lng: c.lng }, zoom: map.getZoom(), counts: counts,
      theme: theme, visible: visible,
      bridge: !!om.bridge, selectedGrid: selectedGrid, rev: cfg.rev, drill: !!(watermark && watermark.style.display === 'block') });
  };
})();
