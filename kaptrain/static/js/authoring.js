/* Module editor: progressive enhancement only; the editor's Preview button does the same without this file.
   As the instructor types, count the words at once and, after a pause, ask the server to render the form as
   learners will see it (the same renderer and sanitiser as the learner page), then show that below the form.
   Only the newest answer is shown, so a slow reply never overwrites a newer preview. */
(function () {
  "use strict";
  var form = document.querySelector("form[data-preview-url]");
  if (!form || !window.fetch || !window.FormData) { return; }
  var url = form.getAttribute("data-preview-url");
  var frame = document.getElementById("ed-preview");
  var note = document.getElementById("ed-preview-note");
  var status = document.getElementById("ed-preview-status");
  var count = document.querySelector("#ed-word-count .word-count-number");
  var body = form.querySelector("textarea[name=body]");
  var csrf = form.querySelector("input[name=csrf_token]");
  var WAIT = 400;
  var timer = null;
  var sent = 0;
  var shown = 0;

  // The same rule as kaptrain.authoring.module_editor.word_count: runs without spaces holding a letter or digit.
  function words(text) {
    return text.split(/\s+/).filter(function (t) { return /[\p{L}\p{N}]/u.test(t); }).length;
  }
  function updateCount() {
    if (count && body) { count.textContent = words(body.value).toLocaleString("en"); }
  }
  function say(text) { if (status && status.textContent !== text) { status.textContent = text; } }

  function refresh() {
    var mine = ++sent;
    var data = new FormData(form);
    data.delete("action");
    fetch(url, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf ? csrf.value : "" }
    }).then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      return response.text();
    }).then(function (html) {
      if (mine < shown) { return; }
      shown = mine;
      // The fragment is the server's sanitised rendering (kaptrain.content.render), as on the learner page.
      frame.innerHTML = html;
      if (note) { note.textContent = "Showing what you typed (not saved yet); it follows as you type."; }
      say("");
    }).catch(function () {
      say("The preview could not be updated. Use the Preview button, or check your connection.");
      if (note) { note.textContent = "The live preview stopped updating: use the Preview button."; }
    });
  }

  function changed() {
    updateCount();
    if (timer) { window.clearTimeout(timer); }
    timer = window.setTimeout(refresh, WAIT);
  }
  form.addEventListener("input", changed);
  updateCount();

  // Loading a file replaces the form: ask first when it holds changes not yet saved.
  if (window.URLSearchParams) {
    var asLoaded = new URLSearchParams(new FormData(form)).toString();
    document.querySelectorAll("form[data-leaves-editor]").forEach(function (other) {
      other.addEventListener("submit", function (event) {
        var edited = new URLSearchParams(new FormData(form)).toString() !== asLoaded;
        if (edited && !window.confirm(other.getAttribute("data-leaves-editor"))) { event.preventDefault(); }
      });
    });
  }
})();
