/* Question-bank editor: progressive enhancement only; every form works without this file.
   1. A final-assessment question: choosing its module lists that module's headings in the section list at once
      (without JavaScript, the "Show this module's sections" button reloads the form with them).
   2. "Discard draft" asks before throwing a draft away. */
(function () {
  "use strict";
  var moduleSelect = document.querySelector("select[data-sections]");
  var sectionSelect = document.getElementById("section");
  if (moduleSelect && sectionSelect) {
    var sections = {};
    try { sections = JSON.parse(moduleSelect.getAttribute("data-sections")) || {}; } catch (e) { sections = {}; }
    var refresh = document.querySelector("[data-sections-refresh]");
    if (refresh) { refresh.hidden = true; }
    moduleSelect.addEventListener("change", function () {
      var current = sectionSelect.value;
      var headings = sections[moduleSelect.value] || [];
      while (sectionSelect.options.length) { sectionSelect.remove(0); }
      sectionSelect.add(new Option("Choose the section that teaches this", ""));
      headings.forEach(function (heading) {
        sectionSelect.add(new Option(heading, heading, false, heading === current));
      });
    });
  }
  document.querySelectorAll("button[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
})();
