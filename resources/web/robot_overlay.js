/* 智能预警 evidence overlay: self-contained, on top of onemap.js's map (window.onemap.map).
 * window.onemapRobot.show(featureCollection) draws one warning's evidence (events, people,
 * devices) as ringed points with plain-text tooltips and fits the view; clear() removes it.
 * Labels are set with textContent only (citizen text is never markup). */
(function () {
  if (window.onemapRobot) { return; }
  var group = null;
  function map() { return window.onemap && window.onemap.map; }
  function tip(text) { var d = document.createElement('div'); d.textContent = text; return d; }
  var R = window.onemapRobot = {};
  R.clear = function () {
    if (group && map()) { map().removeLayer(group); }
    group = null;
    return true;
  };
  R.show = function (fc) {
    var m = map();
    if (!m || typeof L === 'undefined') { return -1; }
    R.clear();
    fc = (typeof fc === 'string') ? JSON.parse(fc) : fc;
    group = L.featureGroup();
    (fc.features || []).forEach(function (f) {
      var c = f.geometry.coordinates, p = f.properties || {};
      var ll = L.latLng(c[1], c[0]);
      var kind = p.kind || 'event';
      L.circleMarker(ll, { radius: kind === 'event' ? 13 : 15, color: p.color || '#fddd60', weight: 3,
        fill: false, opacity: 0.95, interactive: false, className: 'om-robot-ring' }).addTo(group);
      var dot = L.circleMarker(ll, { radius: kind === 'event' ? 6 : 7, color: '#071330', weight: 1.5,
        fillColor: p.color || '#fddd60', fillOpacity: 0.95 });
      dot.bindTooltip(tip(p.label || ''), { direction: 'top', offset: [0, -10], className: 'om-tip' });
      if (p.event_id !== undefined && p.event_id !== null && window.onemap.bridge && window.onemap.bridge.eventClicked) {
        dot.on('click', function () { window.onemap.bridge.eventClicked(p.event_id); });
      }
      dot.addTo(group);
    });
    group.addTo(m);
    var n = (fc.features || []).length;
    if (n === 1) {
      m.setView(group.getBounds().getCenter(), Math.max(m.getZoom(), 16), { animate: false });
    } else if (n > 1) {
      m.fitBounds(group.getBounds().pad(0.6), { maxZoom: 17, animate: false });
    }
    return n;
  };
  R.count = function () { return group ? group.getLayers().length / 2 : 0; };
})();
