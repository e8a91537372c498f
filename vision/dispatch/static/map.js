// The operator map (/ui/map): Leaflet from the package's own files, the points from
// /ui/map.geojson (already in the tiles' datum). No request leaves the center unless the
// city configured its own tile server. Built with DOM calls, never HTML from the data.
(() => {
  const el = document.getElementById("map");
  if (!el || !window.L) return;
  const d = el.dataset;
  const map = L.map(el, { zoomControl: false, maxZoom: +d.maxZoom || 19 });
  L.control.zoom({ zoomInTitle: d.labelZoomIn, zoomOutTitle: d.labelZoomOut }).addTo(map);
  const scale = L.control.scale({ imperial: false });
  scale._updateMetric = function (maxMeters) {  // Leaflet 1.9's own, with the units in the operator's language
    const meters = this._getRoundNum(maxMeters);
    const label = meters < 1000 ? `${meters} ${d.unitM}` : `${meters / 1000} ${d.unitKm}`;
    this._updateScale(this._mScale, label, meters / maxMeters);
  };
  scale.addTo(map);
  map.attributionControl.setPrefix(false);
  const text = (s) => { const div = document.createElement("div"); div.textContent = s; return div.innerHTML; };
  if (d.tiles) {
    L.tileLayer(d.tiles, {
      maxZoom: +d.maxZoom || 19, subdomains: d.subdomains || "abc", attribution: text(d.attribution || ""),
    }).addTo(map);
  }

  const colourBy = document.getElementById("map-colour");
  const caseStyle = (p) => ({
    radius: 7, className: "sv-case", fillOpacity: 0.9,
    color: p.overdue ? "#b91c1c" : "#ffffff", weight: p.overdue ? 3 : 1.5,
    fillColor: colourBy.value === "type" ? p.type_colour : p.status_colour,
  });
  const line = (label, value, literal) => {
    const div = document.createElement("div");
    const b = document.createElement("b");
    b.textContent = label + " ";
    const v = document.createElement("span");
    v.textContent = value;
    if (literal) v.setAttribute("translate", "no");
    div.append(b, v);
    return div;
  };
  const casePopup = (p) => {
    const box = document.createElement("div");
    box.className = "sv-popup";
    const a = document.createElement("a");
    a.href = p.url;
    a.className = "sv-case-link";
    a.textContent = `${d.labelCase} #${p.id}`;
    box.append(a, line(d.labelType, p.type), line(d.labelState, p.status_label + (p.overdue ? ` (${d.labelOverdue})` : "")),
      line(d.labelTime, p.time));
    return box;
  };
  const cameraPopup = (p) => {
    const box = document.createElement("div");
    box.className = "sv-popup";
    box.append(line(d.labelCamera, p.camera_id, true), line(d.labelCases, String(p.cases)), line(d.labelLast, p.time));
    return box;
  };

  // cameras under the cases (a camera's cases sit around it), grid outlines under both
  map.createPane("sv-cameras").style.zIndex = 390;
  const grids = L.featureGroup(), cameras = L.featureGroup(), cases = L.featureGroup();
  const LABEL_ZOOM = 16;  // grid codes from this zoom on: below it the cells are too small to name
  const labels = () => el.classList.toggle("sv-labels-off", map.getZoom() < LABEL_ZOOM);
  map.on("zoomend", labels);
  const draw = (fc) => {
    for (const f of fc.features) {
      const p = f.properties;
      if (p.layer === "grid") {
        const g = L.geoJSON(f, { style: { className: "sv-grid", color: "#0f3a5f", weight: 1.5, dashArray: "5 4", fillOpacity: 0.04 } });
        g.addTo(grids);
        // the code in the cell's north-west corner: community prefix small, the grid's own number below
        const label = document.createElement("span");
        label.setAttribute("translate", "no");
        label.title = p.name;
        const prefix = document.createElement("small");
        prefix.textContent = p.grid_code.slice(0, -3);
        const own = document.createElement("b");
        own.textContent = p.grid_code.slice(-3);
        label.append(prefix, document.createElement("br"), own);
        L.tooltip({ permanent: true, direction: "right", offset: [0, 14], className: "sv-grid-label", interactive: false })
          .setLatLng(g.getBounds().getNorthWest()).setContent(label).addTo(grids);
      } else if (p.layer === "camera") {
        const [lon, lat] = f.geometry.coordinates;
        L.marker([lat, lon], { icon: L.divIcon({ className: "sv-camera", iconSize: [12, 12] }), keyboard: false, pane: "sv-cameras" })
          .bindPopup(cameraPopup(p)).addTo(cameras);
      } else if (p.layer === "case") {
        const [lon, lat] = f.geometry.coordinates;
        const mk = L.circleMarker([lat, lon], caseStyle(p)).bindPopup(casePopup(p));
        mk.feature = f;
        mk.addTo(cases);
      }
    }
    grids.addTo(map);
    cameras.addTo(map);
    cases.addTo(map);
    const overlays = {};
    overlays[text(d.labelGrids)] = grids;
    overlays[text(d.labelCameras)] = cameras;
    overlays[text(d.labelCases)] = cases;
    L.control.layers(null, overlays, { collapsed: false }).addTo(map);
    const all = L.featureGroup([grids, cameras, cases]).getBounds();
    if (cases.getLayers().length) map.fitBounds(cases.getBounds().extend(cameras.getBounds()), { padding: [30, 30], maxZoom: 18 });
    else if (all.isValid()) map.fitBounds(all, { padding: [30, 30], maxZoom: 18 });
    else if (d.center) map.setView(d.center.split(",").map(Number), +d.zoom || 15);
    else map.setView([35, 105], 4);
    labels();
    document.getElementById("map-total").textContent = `(${fc.total})`;
    const notice = document.getElementById("map-notice");
    if (fc.notice) { notice.textContent = fc.notice; notice.hidden = false; }
    else if (!cases.getLayers().length) { notice.textContent = d.labelNone; notice.hidden = false; }
    el.dataset.loaded = String(cases.getLayers().length);
  };
  map.setView([35, 105], 4);  // until the points arrive
  fetch(d.src, { credentials: "same-origin", headers: { Accept: "application/geo+json" } })
    .then((r) => { if (!r.ok) throw new Error(`HTTP ${r.status}`); return r.json(); })
    .then(draw)
    .catch(() => { document.getElementById("map-error").hidden = false; el.dataset.loaded = "error"; });

  // colour by state or by type; the legend follows
  document.querySelectorAll(".legend .swatch[data-colour]").forEach((s) => { s.style.background = s.dataset.colour; });
  colourBy.addEventListener("change", () => {
    cases.eachLayer((mk) => mk.setStyle(caseStyle(mk.feature.properties)));
    document.getElementById("legend-status").hidden = colourBy.value !== "status";
    document.getElementById("legend-type").hidden = colourBy.value !== "type";
  });
})();
