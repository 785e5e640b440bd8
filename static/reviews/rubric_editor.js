// Rubric editor: show only the fields that the chosen kind of each criterion uses.
// Without this script every field stays visible and the server ignores the unused ones.
(function () {
  "use strict";
  var USED = {
    pairwise: ["allow_tie"],
    choice: ["per_response", "options"],
    scale: ["per_response", "min", "max"],
  };
  var KIND_FIELDS = ["per_response", "allow_tie", "min", "max", "options"];

  function update(criterion) {
    var select = criterion.querySelector('[data-field="kind"] select');
    if (!select) return;
    var used = USED[select.value] || KIND_FIELDS;
    KIND_FIELDS.forEach(function (name) {
      var field = criterion.querySelector('[data-field="' + name + '"]');
      if (field) field.hidden = used.indexOf(name) === -1;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-criterion]").forEach(function (criterion) {
      update(criterion);
      var select = criterion.querySelector('[data-field="kind"] select');
      if (select) select.addEventListener("change", function () { update(criterion); });
    });
  });
})();
