// The item browser: "select every item on this page" for the bulk actions.
(function () {
  "use strict";
  const form = document.querySelector("[data-bulk]");
  if (!form) return;
  const all = form.querySelector("[data-select-all]");
  const boxes = () => Array.from(form.querySelectorAll('input[name="item"]'));
  if (all) {
    all.addEventListener("change", () => boxes().forEach((box) => { box.checked = all.checked; }));
    form.addEventListener("change", (event) => {
      if (event.target.name !== "item") return;
      const checked = boxes().filter((box) => box.checked).length;
      all.checked = checked === boxes().length;
      all.indeterminate = checked > 0 && checked < boxes().length;
    });
  }
})();
