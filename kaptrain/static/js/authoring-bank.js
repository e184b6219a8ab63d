/* Question-bank editor: progressive enhancement only; every form works without this file.
   1. A final-assessment question: choosing its module lists that module's headings in the section list at once
      (without JavaScript, the "Show this module's sections" button reloads the form with them).
   2. "Discard draft" asks before throwing a draft away.
   3. A form or link that leaves the question editor (adding a case reloads the page; the preview shows what is
      saved) asks first when the question has changes not yet saved, which leaving would lose. */
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
  var editor = document.querySelector("form.bank-editor-form");
  if (editor && window.FormData && window.URLSearchParams) {
    var asLoaded = new URLSearchParams(new FormData(editor)).toString();
    var leaving = function (event) {
      var changed = new URLSearchParams(new FormData(editor)).toString() !== asLoaded;
      if (changed && !window.confirm(event.currentTarget.getAttribute("data-leaves-editor"))) { event.preventDefault(); }
    };
    document.querySelectorAll("form[data-leaves-editor]").forEach(function (form) {
      form.addEventListener("submit", leaving);
    });
    document.querySelectorAll("a[data-leaves-editor]").forEach(function (link) {
      link.addEventListener("click", leaving);
    });
  }
})();
