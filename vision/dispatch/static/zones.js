// Zone editor on a camera's picture (fleet_camera.html): the zones being drawn live as JSON in
// the form's textarea, which the server checks as `config check` would. Points are fractions
// of the picture (0-1, x right, y down), three decimals, as in a site file.
(() => {
  const form = document.getElementById("zones-form");
  const svg = document.querySelector("#camera-picture svg.zones");
  if (!form || !svg) return;
  const NS = "http://www.w3.org/2000/svg";
  const text = document.getElementById("zones-json");
  const pick = document.getElementById("zone-pick");
  const name = document.getElementById("zone-name");
  const kind = document.getElementById("zone-kind");
  let zones = [];
  try { zones = JSON.parse(text.value); } catch (_) { zones = []; }
  if (!Array.isArray(zones)) zones = [];
  let current = zones.length ? 0 : -1;
  const clamp = (v) => Math.min(1, Math.max(0, Math.round(v * 1000) / 1000));

  function save() { text.value = JSON.stringify(zones); }

  function draw() {
    svg.replaceChildren();
    zones.forEach((z, i) => {
      const closed = z.points.length >= 3;
      const shape = document.createElementNS(NS, closed ? "polygon" : "polyline");
      shape.setAttribute("points", z.points.map((p) => p.join(",")).join(" "));
      shape.setAttribute("class", `zone kind-${z.kind}${i === current ? " selected" : ""}`);
      shape.dataset.zone = z.name;
      svg.appendChild(shape);
      if (i !== current) return;
      z.points.forEach((p) => {
        const dot = document.createElementNS(NS, "circle");
        dot.setAttribute("cx", p[0]); dot.setAttribute("cy", p[1]); dot.setAttribute("r", "0.006");
        dot.setAttribute("class", "vertex");
        svg.appendChild(dot);
      });
    });
    pick.replaceChildren(...zones.map((z, i) => new Option(z.name || "?", String(i))));
    pick.value = String(current);
    const z = zones[current];
    name.value = z ? z.name : "";
    if (z) kind.value = z.kind;
    [name, kind, pick, document.getElementById("zone-undo"), document.getElementById("zone-delete")]
      .forEach((el) => { el.disabled = !z; });
    save();
  }

  svg.classList.add("editing");
  svg.addEventListener("click", (ev) => {
    if (current < 0) return;
    const box = svg.getBoundingClientRect();
    zones[current].points.push([clamp((ev.clientX - box.left) / box.width), clamp((ev.clientY - box.top) / box.height)]);
    draw();
  });
  document.getElementById("zone-new").addEventListener("click", () => {
    zones.push({ name: `zone-${zones.length + 1}`, kind: kind.value, points: [] });
    current = zones.length - 1;
    draw();
    name.select();
  });
  document.getElementById("zone-undo").addEventListener("click", () => {
    if (zones[current]) { zones[current].points.pop(); draw(); }
  });
  document.getElementById("zone-delete").addEventListener("click", () => {
    zones.splice(current, 1);
    current = Math.min(current, zones.length - 1);
    draw();
  });
  pick.addEventListener("change", () => { current = Number(pick.value); draw(); });
  name.addEventListener("input", () => {
    if (!zones[current]) return;
    zones[current].name = name.value.trim();
    pick.options[current].text = zones[current].name || "?";
    save();
  });
  kind.addEventListener("change", () => { if (zones[current]) { zones[current].kind = kind.value; draw(); } });
  text.addEventListener("change", () => {  // edited by hand: take it when it parses
    try { const parsed = JSON.parse(text.value); if (Array.isArray(parsed)) { zones = parsed; current = zones.length - 1; draw(); } } catch (_) { /* the server says what is wrong */ }
  });
  draw();
})();
