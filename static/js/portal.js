// Small progressive enhancements for the portal; every page works without them.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(() => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 2000);
  });
});

// Forms that ask first: <form data-confirm="text">. The text is read from the attribute,
// never built into script, so a name in it cannot run (and the CSP forbids inline handlers).
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

// Preset buttons: <button data-fill="#field" data-value="50"> puts the value in the field.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-fill]");
  if (!button) return;
  const field = document.querySelector(button.dataset.fill);
  if (field) field.value = button.dataset.value;
});

// <select data-autosubmit> submits its form when changed (was an inline onchange).
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-autosubmit]");
  if (select && select.form) select.form.requestSubmit();
});

// On a phone, tables stack each row into lines "Column  value" (app.css): label each cell
// with its column's header unless the template already did (data-label).
for (const table of document.querySelectorAll("table.data")) {
  const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
  for (const row of table.querySelectorAll("tbody tr")) {
    let column = 0;
    for (const cell of row.cells) {
      if (heads[column] && cell.colSpan === 1 && !cell.hasAttribute("data-label")) cell.dataset.label = heads[column];
      column += cell.colSpan;
    }
  }
}

// Narrow screens: the navigation folds behind its Menu button (app.css shows the button
// below 860 px; without this script the labelled links simply wrap).
const side = document.querySelector(".side");
const toggle = side && side.querySelector(".nav-toggle");
if (toggle) {
  side.classList.add("collapsible");
  toggle.addEventListener("click", () => {
    const open = side.classList.toggle("open");
    toggle.setAttribute("aria-expanded", String(open));
  });
}
