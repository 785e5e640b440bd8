// The adjudication page: keyboard shortcuts and the shortcut overlay. The page works without
// this file (plain forms); this makes it fast. Shortcuts pause while a text box has the focus.
(function () {
  "use strict";

  const root = document.querySelector("[data-adjudicate]");
  if (!root) return;
  const overlay = document.getElementById("shortcuts");
  const claimForm = document.getElementById("claim-form");
  const form = document.getElementById("adjudication-form");
  const dismiss = document.getElementById("dismiss");
  const dismissForm = document.getElementById("dismiss-form");
  const questions = Array.from(root.querySelectorAll("[data-question]"));
  let current = -1;

  function typing(target) {
    return target && (target.tagName === "TEXTAREA" || target.tagName === "SELECT" ||
      (target.tagName === "INPUT" && !["radio", "checkbox", "submit", "button", "hidden"].includes(target.type)));
  }

  function select(index) {
    if (!questions.length) return;
    current = Math.max(0, Math.min(questions.length - 1, index));
    questions.forEach(function (q, n) { q.classList.toggle("current", n === current); });
    const q = questions[current];
    const checked = q.querySelector("input:checked") || q.querySelector("input");
    if (checked) checked.focus({ preventScroll: true });
    q.scrollIntoView({ block: "nearest" });
  }

  function choose(digit) {
    if (!questions.length) return false;
    if (current < 0) select(0);
    const radios = questions[current].querySelectorAll("input[type=radio]");
    const radio = radios[digit - 1];
    if (!radio) return false;
    radio.checked = true;
    radio.dispatchEvent(new Event("change", { bubbles: true }));
    if (current < questions.length - 1) select(current + 1);
    else radio.focus();
    return true;
  }

  function toggleOverlay() {
    if (!overlay) return;
    if (overlay.open) overlay.close();
    else overlay.showModal();
  }

  for (const button of root.querySelectorAll("[data-show-shortcuts]")) {
    button.addEventListener("click", toggleOverlay);
  }
  questions.forEach(function (q, n) {
    q.addEventListener("focusin", function () {
      current = n;
      questions.forEach(function (other, m) { other.classList.toggle("current", m === n); });
    });
  });

  // One submission per form: a second key press or click sends nothing.
  for (const f of root.querySelectorAll("form[method=post]")) {
    f.addEventListener("submit", function (event) {
      if (f.dataset.sent) {
        event.preventDefault();
        return;
      }
      f.dataset.sent = "1";
    });
  }

  function send(f) {
    if (!f) return;
    if (f.requestSubmit) f.requestSubmit();
    else f.submit();
  }

  document.addEventListener("keydown", function (event) {
    const target = event.target;
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      if (dismissForm && dismissForm.contains(target)) send(dismissForm);
      else if (form) send(form);
      event.preventDefault();
      return;
    }
    if (event.key === "Escape") {
      if (typing(target)) target.blur();
      else if (dismiss && dismiss.open) dismiss.open = false;
      return;
    }
    if (typing(target) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (overlay && overlay.open && event.key !== "?") return;
    const key = event.key.toLowerCase();
    let handled = true;
    if (key === "?") toggleOverlay();
    else if (key === "c" && claimForm) send(claimForm);
    else if (key === "j") select(current + 1);
    else if (key === "k") select(current - 1);
    else if (/^[1-9]$/.test(key)) handled = choose(Number(key));
    else if (key === "r" && form) form.querySelector("textarea[name=rationale]").focus();
    else if (key === "m" && form) {
      const flag = form.querySelector("input[name=rubric_ambiguous]");
      flag.checked = true;
      form.querySelector("textarea[name=ambiguity_note]").focus();
    } else if (key === "x" && dismiss) {
      dismiss.open = true;
      dismiss.querySelector("textarea").focus();
    } else handled = false;
    if (handled) event.preventDefault();
  });

  root.dataset.ready = "1";
})();
