// The compare page: keyboard shortcuts, the shortcut overlay, time on the page, lease renewal,
// and no double submits. The page works without this file (plain forms); this makes it fast.
(function () {
  "use strict";

  const root = document.querySelector("[data-compare]");
  if (!root) return;
  const judgmentForm = document.getElementById("judgment-form");
  const skipForm = document.getElementById("skip-form");
  const escalate = document.getElementById("escalate");
  const escalateForm = document.getElementById("escalate-form");
  const overlay = document.getElementById("shortcuts");
  const notice = document.getElementById("lease-notice");

  // -- time spent: only while the page is visible ------------------------------------------
  let spent = 0;
  let since = document.visibilityState === "visible" ? performance.now() : null;
  let lastActivity = performance.now();
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      since = performance.now();
      lastActivity = since;
    } else if (since !== null) {
      spent += performance.now() - since;
      since = null;
    }
  });
  function elapsed() {
    return Math.round(spent + (since === null ? 0 : performance.now() - since));
  }
  for (const type of ["keydown", "pointerdown", "scroll"]) {
    document.addEventListener(type, function () { lastActivity = performance.now(); }, { passive: true });
  }

  // -- one submission per page: a second click or key press sends nothing --------------------
  let sending = false;
  for (const form of document.querySelectorAll("form[data-lease-form]")) {
    form.addEventListener("submit", function (event) {
      if (sending) {
        event.preventDefault();
        return;
      }
      sending = true;
      for (const input of form.querySelectorAll("input[data-time-spent]")) input.value = String(elapsed());
      for (const button of document.querySelectorAll("form[data-lease-form] button[type=submit]")) button.disabled = true;
    });
  }
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return; // back from the next page: the forms may be used again
    sending = false;
    for (const button of document.querySelectorAll("form[data-lease-form] button[type=submit]")) button.disabled = false;
  });
  function send(form) {
    if (!form || sending) return;
    if (form.requestSubmit) form.requestSubmit(); // runs the browser's checks and the submit handler
    else form.submit();
  }

  // -- keyboard -----------------------------------------------------------------------------
  let armed = null; // a question waiting for its option number

  function isTyping(el) {
    if (!el) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    return el.tagName === "INPUT" && !["radio", "checkbox", "hidden", "submit", "button", "reset"].includes(el.type);
  }

  function disarm() {
    if (armed) armed.classList.remove("armed");
    armed = null;
  }

  function firstInput(group) {
    return group.querySelector("input:checked") || group.querySelector("input, textarea");
  }

  function arm(group) {
    disarm();
    const input = firstInput(group);
    if (!input) return;
    input.focus();
    if (input.type === "radio") {
      armed = group;
      group.classList.add("armed");
    }
  }

  function choose(group, digit) {
    const label = group.querySelector('label[data-digit="' + digit + '"]');
    const input = label && label.querySelector("input");
    if (!input) return false;
    input.checked = true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    input.focus();
    return true;
  }

  function choosePairwise(value) {
    const group = root.querySelector("[data-pairwise]");
    const input = group && group.querySelector('input[value="' + value + '"]');
    if (!input) return false;
    input.checked = true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    if (document.activeElement && document.activeElement.type === "radio") input.focus();
    return true;
  }

  function openEscalate() {
    if (!escalate) return;
    escalate.open = true;
    const input = firstInput(escalate.querySelector("fieldset") || escalate);
    if (input) input.focus();
    escalate.scrollIntoView({ block: "nearest" });
  }

  function toggleOverlay() {
    if (!overlay) return;
    if (overlay.open) overlay.close();
    else overlay.showModal();
  }
  const showButton = root.querySelector("[data-show-shortcuts]");
  if (showButton) showButton.addEventListener("click", toggleOverlay);

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.isComposing) return;
    const active = document.activeElement;
    const inEscalate = escalate && escalate.open && escalate.contains(active);

    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      event.preventDefault();
      if (!event.repeat) send(inEscalate ? escalateForm : judgmentForm);
      return;
    }
    if (event.key === "Escape") {
      disarm();
      if (overlay && overlay.open) return; // the dialog closes itself
      if (inEscalate) {
        escalate.open = false;
        escalate.querySelector("summary").focus();
      } else if (isTyping(active)) {
        active.blur();
      }
      return;
    }
    // Enter on a radio button would submit its form: only Ctrl+Enter and the buttons do that.
    if (event.key === "Enter" && active && active.type === "radio") {
      event.preventDefault();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(active)) return;
    if (overlay && overlay.open) {
      if (event.key === "?") {
        event.preventDefault();
        overlay.close();
      }
      return;
    }
    if (inEscalate) {
      if (/^[0-9]$/.test(event.key) && choose(escalate, event.key)) event.preventDefault();
      return;
    }
    if (armed) {
      const group = armed;
      disarm();
      if (/^[0-9]$/.test(event.key)) {
        event.preventDefault();
        choose(group, event.key);
        return;
      }
    }
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    let handled = true;
    if (key === "?") toggleOverlay();
    else if (key === "1") handled = choosePairwise("left");
    else if (key === "2") handled = choosePairwise("right");
    else if (key === "t") handled = choosePairwise("tie");
    else if (key === "e") openEscalate();
    else if (key === "s") {
      if (!event.repeat) send(skipForm);
    } else {
      const target = key.length === 1 && /^[a-z]$/.test(key) ? root.querySelector('[data-key="' + key + '"]') : null;
      if (!target) handled = false;
      else if (target.tagName === "TEXTAREA") target.focus();
      else arm(target);
    }
    if (handled) event.preventDefault();
  });

  // -- lease renewal while the page is open and in use ----------------------------------------
  const renewUrl = root.dataset.renewUrl;
  const renewMs = Number(root.dataset.renewSeconds || 300) * 1000;
  const leaseMs = Number(root.dataset.leaseSeconds || 900) * 1000;
  const tokenInput = judgmentForm && judgmentForm.querySelector("input[name=csrfmiddlewaretoken]");
  let timer = null;

  function lost(message) {
    if (timer) clearInterval(timer);
    if (!notice) return;
    notice.textContent = (message || "This item is no longer yours.") + " Reload the page for your next item.";
    notice.hidden = false;
  }

  async function renew() {
    // An abandoned tab must not hold the item forever: renew only while someone is there.
    if (document.visibilityState !== "visible" || performance.now() - lastActivity > leaseMs) return;
    try {
      const response = await fetch(renewUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": tokenInput ? tokenInput.value : "", Accept: "application/json" },
      });
      if (response.ok) return;
      if (response.status === 404 || response.status === 409) {
        const data = await response.json().catch(function () { return {}; });
        lost(data.error);
      }
    } catch (error) {
      // Offline for a moment: try again at the next tick.
    }
  }
  if (renewUrl && tokenInput) timer = setInterval(renew, renewMs);
  root.setAttribute("data-ready", ""); // the shortcuts work from here on (browser tests wait for it)
})();
