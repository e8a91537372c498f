// Small progressive enhancements; every page works without it.
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
