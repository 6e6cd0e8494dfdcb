// Progressive enhancement only: every page reads and works without this file.
// The tree page gets "Expand all" / "Collapse all" buttons for its <details> elements.
document.addEventListener("DOMContentLoaded", () => {
  const controls = document.querySelector(".tree-controls");
  if (!controls) return;
  controls.hidden = false;
  controls.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-tree]");
    if (!button) return;
    const open = button.dataset.tree === "open";
    document.querySelectorAll("ul.tree details").forEach((d) => { d.open = open; });
  });
});
