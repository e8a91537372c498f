// Progressive enhancements; every page works without them (forms post, links page).
document.querySelectorAll("form").forEach((form) => {
  form.addEventListener("submit", () => {
    form.querySelectorAll("button").forEach((b) => setTimeout(() => { b.disabled = true; }, 0));
  });
});
document.querySelectorAll("button[data-action=reject], button[data-action=send_back]").forEach((b) => {
  b.addEventListener("click", (ev) => {
    const reason = b.form.querySelector("input[name=reason]");
    if (reason && !reason.value.trim()) { reason.focus(); ev.preventDefault(); }
  });
});

// Evidence zoom: a click opens the full-size image; a click on it toggles fit / actual size.
const zoom = document.getElementById("zoom");
if (zoom) {
  const big = zoom.querySelector("img");
  document.querySelectorAll("img.zoomable").forEach((img) => {
    img.addEventListener("click", () => {
      big.src = img.src; big.alt = img.alt; big.classList.remove("actual"); zoom.showModal();
    });
  });
  big.addEventListener("click", () => big.classList.toggle("actual"));
  zoom.addEventListener("click", (ev) => { if (ev.target === zoom) zoom.close(); });
}

// Bulk review: count the selection; rejecting needs the reason.
const bulk = document.getElementById("bulk");
if (bulk) {
  const boxes = () => Array.from(document.querySelectorAll("input.select[form=bulk]"));
  const counter = document.getElementById("selected-count");
  const show = () => {
    const n = boxes().filter((b) => b.checked).length;
    counter.textContent = n ? counter.dataset.template.replace("{n}", n) : "";
  };
  document.getElementById("select-all").addEventListener("change", (ev) => {
    boxes().forEach((b) => { b.checked = ev.target.checked; }); show();
  });
  boxes().forEach((b) => b.addEventListener("change", show));
  document.getElementById("bulk-reject").addEventListener("click", (ev) => {
    const reason = document.getElementById("bulk-reason");
    if (!reason.value.trim()) { reason.focus(); ev.preventDefault(); }
  });
  bulk.addEventListener("submit", (ev) => { if (!boxes().some((b) => b.checked)) ev.preventDefault(); });
  show();
}

// Review queue keys (Frigate-like): j/k move, a accept, r reject, x select, o open, n/p page, ? help.
const cards = Array.from(document.querySelectorAll("article.case"));
if (cards.length || document.getElementById("queue-empty")) {
  let current = -1;
  const focusCard = (i) => {
    if (!cards.length) return;
    current = Math.max(0, Math.min(cards.length - 1, i));
    cards.forEach((c, j) => c.classList.toggle("current", j === current));
    cards[current].focus({ preventScroll: true });
    cards[current].scrollIntoView({ block: "nearest" });
  };
  const help = document.getElementById("keys-help");
  const helpLink = document.getElementById("keys-help-open");
  if (helpLink) helpLink.addEventListener("click", (ev) => { ev.preventDefault(); help.showModal(); });
  const go = (id) => { const a = document.getElementById(id); if (a) window.location.href = a.href; };
  document.addEventListener("keydown", (ev) => {
    const t = ev.target;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement) {
      if (ev.key === "Escape") t.blur();
      return;
    }
    if (document.querySelector("dialog[open]")) return;  // Esc closes a dialog natively
    const card = cards[current];
    switch (ev.key) {
      case "j": focusCard(current + 1); break;
      case "k": focusCard(current - 1); break;
      case "a": if (card) card.querySelector("button[data-action=accept]").click(); break;
      case "r": if (card) { ev.preventDefault(); card.querySelector("input.reason").focus(); } break;
      case "x": if (card) { const b = card.querySelector("input.select"); b.checked = !b.checked; b.dispatchEvent(new Event("change")); } break;
      case "o": if (card) window.location.href = card.querySelector("h2 a").href; break;
      case "n": go("page-next"); break;
      case "p": go("page-prev"); break;
      case "?": help.showModal(); break;
      default: return;
    }
  });
  if (cards.length) focusCard(0);
}
