// The console's only script: copy buttons, confirmations, and task cards that refresh
// themselves while their task runs. Pages work without it; nothing here is inline.
"use strict";

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(() => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  });
});

document.addEventListener("submit", (event) => {
  const question = event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

const REFRESH_MS = 2000;

async function refresh(card) {
  const response = await fetch(card.dataset.refresh, {
    headers: { "X-Console-Fragment": "1" },
    credentials: "same-origin",
  });
  if (response.status === 401) { window.location.reload(); return null; }
  if (!response.ok) return card;
  const holder = document.createElement("div");
  holder.innerHTML = await response.text();
  const fresh = holder.firstElementChild;
  if (!fresh) return card;
  card.replaceWith(fresh);
  return fresh;
}

function watch(card) {
  const tick = async () => {
    let current = card;
    try { current = await refresh(card); } catch (_) { /* offline for a moment: try again */ }
    if (current && current.dataset.refresh) { card = current; setTimeout(tick, REFRESH_MS); }
  };
  setTimeout(tick, REFRESH_MS);
}

document.querySelectorAll("[data-refresh]").forEach(watch);
