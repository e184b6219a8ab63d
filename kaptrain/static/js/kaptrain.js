/* kaptrain: progressive enhancement only; every page works without this file.
   Seat time: while a module page is visible and the learner has scrolled, typed, touched or moved
   the pointer within the idle window (a few minutes: reading a dense paragraph needs no scroll),
   send a heartbeat each interval. The server credits at most one interval per beat, so a page
   left open while away, or hidden, is not counted. The reading time the server answers is shown at
   once, so a reader sees it grow (and sees when it does not). */
(function () {
  "use strict";
  var lesson = document.querySelector("[data-heartbeat-url]");
  if (!lesson || !window.fetch) { return; }
  var url = lesson.getAttribute("data-heartbeat-url");
  var csrf = lesson.getAttribute("data-csrf");
  var seconds = parseInt(lesson.getAttribute("data-heartbeat-seconds"), 10) || 30;
  var idle = parseInt(lesson.getAttribute("data-idle-seconds"), 10) || 180;
  var shown = lesson.querySelector("[data-seat-minutes]");
  var lastActivity = Date.now();
  ["scroll", "keydown", "mousemove", "pointerdown", "touchstart", "focusin"].forEach(function (name) {
    window.addEventListener(name, function () { lastActivity = Date.now(); }, { passive: true });
  });
  window.setInterval(function () {
    var active = Date.now() - lastActivity < idle * 1000;
    if (document.visibilityState !== "visible" || !active) { return; }
    fetch(url, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrf } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (shown && data && typeof data.seat_seconds === "number") {
          shown.textContent = Math.floor(data.seat_seconds / 60) + " min";
        }
      })
      .catch(function () { /* offline: this interval is simply not counted */ });
  }, seconds * 1000);
})();

/* Quiz time limit: keep the "minutes left" text current and announce the last 5 minutes, the last
   minute and time up to screen readers (a polite live region: focus stays where it is). The server
   enforces the limit; this only informs. */
(function () {
  "use strict";
  var timer = document.getElementById("timer");
  if (!timer) { return; }
  var left = timer.querySelector(".timer-left");
  var alertBox = document.getElementById("timer-alert");
  var deadline = Date.now() + parseInt(timer.getAttribute("data-seconds-left"), 10) * 1000;
  var extend = timer.getAttribute("data-extend-minutes");
  var announced = {};
  function tick() {
    var seconds = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    var minutes = Math.ceil(seconds / 60);
    if (left) {
      left.textContent = seconds === 0 ? "time is up" :
        seconds < 60 ? "less than a minute left" : "about " + minutes + " minutes left";
    }
    [5, 1].forEach(function (mark) {
      if (minutes <= mark && seconds > 0 && !announced[mark] && alertBox) {
        announced[mark] = true;
        alertBox.textContent = (mark === 1 ? "One minute left to submit." : "Five minutes left to submit.") +
          (extend ? " To add " + extend + " minutes, use the I need more time button." : "");
      }
    });
    if (seconds === 0 && !announced.up && alertBox) {
      announced.up = true;
      alertBox.textContent = "Time is up. The answers saved so far will be graded; a submission now is not accepted.";
    }
    if (seconds > 0) { window.setTimeout(tick, Math.min(15000, seconds * 1000)); }
  }
  tick();
})();

/* How many questions have an answer chosen: in a timed quiz's sticky bar, and above the buttons of any quiz, so a
   long quiz shows what is left before it is submitted. */
(function () {
  "use strict";
  var form = document.querySelector("form[data-save-url]");
  var counts = document.querySelectorAll(".answered-count");
  if (!form || !counts.length) { return; }
  var names = [];
  Array.prototype.forEach.call(form.querySelectorAll('input[name^="q-"]'), function (input) {
    if (names.indexOf(input.name) < 0) { names.push(input.name); }
  });
  if (!names.length) { return; }
  function countAnswered() {
    var answered = names.filter(function (name) {
      return form.querySelector('input[name="' + name + '"]:checked') !== null;
    }).length;
    Array.prototype.forEach.call(counts, function (count) {
      count.hidden = false;
      count.textContent = " " + answered + " of " + names.length + " questions answered.";
    });
  }
  countAnswered();
  form.addEventListener("change", countAnswered);
})();

/* Registration: preselect the browser's time zone while the select is still empty. Without this
   script the select stays on "Not chosen" and the site shows times in UTC. */
(function () {
  "use strict";
  var select = document.querySelector("select[data-detect-time-zone]");
  if (!select || select.value || !window.Intl) { return; }
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!zone) { return; }
  /* Some browsers report a zone's old name ("Asia/Calcutta" for the list's "Asia/Kolkata"): an option matches
     when the browser resolves it to the same zone. */
  function resolves(name) {
    try { return new Intl.DateTimeFormat("en", { timeZone: name }).resolvedOptions().timeZone === zone; }
    catch (e) { return false; }
  }
  var options = Array.prototype.slice.call(select.options);
  var match = options.filter(function (o) { return o.value === zone; })[0] ||
    options.filter(function (o) { return o.value && resolves(o.value); })[0];
  if (match) { select.value = match.value; }
})();
/* A "Print" button (data-print) opens the browser's print dialog; without this file, the browser's own
   Print command gives the same result, since print.css drops navigation and forms. */
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("[data-print]"), function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
})();

/* Quiz answers: each change is saved on the server as the learner goes (the form's "Save answers" button does
   the same without this script), so leaving a timed quiz and coming back loses nothing. Saves run one at a time;
   a change made while one is on its way is sent when it returns, and a button pressed meanwhile ("Save answers",
   "Submit answers") is sent after it too: the page's fingerprint of the saved answers is then the one that save
   returned, and the server does not mistake this tab for a stale one. */
(function () {
  "use strict";
  var form = document.querySelector("form[data-save-url]");
  if (!form || !window.fetch || !window.FormData) { return; }
  var url = form.getAttribute("data-save-url");
  var status = document.getElementById("save-status");
  var csrf = form.querySelector("input[name=csrf_token]");
  var shown = form.querySelector("input[name=saved_as]");
  var busy = false;
  var again = false;
  var failed = false;
  var elsewhere = false;  // another window or tab saved since this page loaded: no more saves from here
  var waiting = null;  // a button pressed while a save was on its way: [the button]
  function say(text) { if (status && status.textContent !== text) { status.textContent = text; } }
  function done() {
    busy = false;
    if (again) { again = false; save(); return; }
    if (waiting) {
      var button = waiting[0];
      waiting = null;
      if (form.requestSubmit) { form.requestSubmit(button || undefined); } else if (button) { button.click(); }
    }
  }
  form.addEventListener("submit", function (event) {
    if (!busy) { return; }
    event.preventDefault();
    waiting = [event.submitter || null];
  });
  function save() {
    if (elsewhere) { return; }
    if (busy) { again = true; return; }
    busy = true;
    fetch(url, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": csrf ? csrf.value : "" }
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (response.ok) {
          if (shown && body && body.saved_as) { shown.value = body.saved_as; }
          say(failed ? "Saved again: every answer you chose is kept." : "Your answers are saved as you choose them.");
          failed = false;
        } else if (body && body.changed_elsewhere) {
          elsewhere = true;
          if (status) { status.classList.add("error-text"); }
          say(body.error);
        } else {
          failed = true;
          say((body && body.error) || "Your last choice could not be saved. Use Save answers, or reload the page.");
        }
      });
    }).catch(function () {
      failed = true;
      say("Your last choice could not be saved (no connection). Use Save answers when you are back online.");
    }).then(done, done);
  }
  form.addEventListener("change", save);
})();

/* Enter on an answer chooses it, as Space does, instead of submitting the whole attempt for grading (a browser
   submits a form when Enter is pressed in one of its fields). Only the buttons submit. */
(function () {
  "use strict";
  var form = document.querySelector("form[data-save-url]");
  if (!form) { return; }
  form.addEventListener("keydown", function (event) {
    var input = event.target;
    if (event.key !== "Enter" || !input || input.tagName !== "INPUT") { return; }
    if (input.type !== "radio" && input.type !== "checkbox") { return; }
    event.preventDefault();
    if (input.type === "checkbox" || !input.checked) { input.click(); }  // click() fires the change that saves
  });
})();

/* A page that comes back with an error summary (a refused form) moves focus to it, so it is read first.
   The autofocus attribute does this in most browsers without the script. */
(function () {
  "use strict";
  var summary = document.querySelector(".error-summary[tabindex]");
  if (summary && document.activeElement !== summary) { summary.focus(); }
})();

/* A second click on a form's button while the first is still being answered is ignored, so a double click
   approves, revokes or submits once (the server refuses a repeat anyway, and says so). The buttons are not
   disabled: their name and value must still be sent. A form that stays on the page (a download) takes clicks
   again after a few seconds, and a page brought back by the Back button takes them at once. */
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form || (form.method || "").toLowerCase() !== "post" || event.defaultPrevented) { return; }
    var last = parseInt(form.getAttribute("data-sent-at") || "0", 10);
    if (Date.now() - last < 4000) { event.preventDefault(); return; }
    form.setAttribute("data-sent-at", String(Date.now()));
  });
  window.addEventListener("pageshow", function () {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-sent-at]"), function (form) {
      form.removeAttribute("data-sent-at");
    });
  });
})();

/* "Copy link" beside a read-only address (the certificate's verification link): shown only where the browser can
   copy, and says so in a status line; without it the address is selected for copying by hand. */
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("button[data-copy]"), function (button) {
    var input = document.getElementById(button.getAttribute("data-copy"));
    var status = document.querySelector("[data-copied-for='" + button.getAttribute("data-copy") + "']");
    if (!input || !navigator.clipboard) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(input.value).then(function () {
        if (status) { status.textContent = "Copied."; }
      }, function () {
        input.select();
        if (status) { status.textContent = "Selected: press Ctrl+C (or Cmd+C) to copy."; }
      });
    });
  });
})();

/* Forms marked data-keep-draft keep what was chosen and typed, in this browser tab only (sessionStorage), until
   the server has taken them: a login that ended meanwhile sends the person to log in again, and the form then
   comes back as they left it. A page marked data-draft-done (the form was received) forgets the draft. The key
   names the account, so someone else logging in at the same tab does not get another person's answers. */
(function () {
  "use strict";
  var store;
  try { store = window.sessionStorage; } catch (e) { return; }
  if (!store) { return; }
  var prefix = "kaptrain-draft:";
  document.querySelectorAll("[data-draft-done]").forEach(function (el) {
    store.removeItem(prefix + el.getAttribute("data-draft-done"));
  });
  // Logging out on purpose leaves nothing for the next person at this tab (a login that ran out keeps the drafts).
  document.querySelectorAll("form[data-forget-drafts]").forEach(function (form) {
    form.addEventListener("submit", function () {
      Object.keys(store).filter(function (key) { return key.indexOf(prefix) === 0; })
        .forEach(function (key) { store.removeItem(key); });
    });
  });
  function kept(form) {
    return Array.prototype.filter.call(form.elements, function (f) {
      return f.name && f.name !== "csrf_token" && ["hidden", "password", "submit", "button", "file"].indexOf(f.type) === -1;
    });
  }
  function choice(f) { return f.type === "radio" || f.type === "checkbox"; }
  document.querySelectorAll("form[data-keep-draft]").forEach(function (form) {
    var key = prefix + form.getAttribute("data-keep-draft");
    var saved = null;
    try { saved = JSON.parse(store.getItem(key) || "null"); } catch (e) { saved = null; }
    var untouched = kept(form).every(function (f) { return choice(f) ? !f.checked : !f.value; });
    if (saved && untouched) {  // a form the server filled in (its errors shown) keeps what was sent
      var restored = false;
      kept(form).forEach(function (f) {
        var values = saved[f.name];
        if (!values) { return; }
        if (choice(f)) { f.checked = values.indexOf(f.value) !== -1; } else { f.value = values[0] || ""; }
        restored = restored || (choice(f) ? f.checked : f.value !== "");
      });
      if (restored) {
        var note = document.createElement("p");
        note.className = "flash flash-info";
        note.setAttribute("role", "status");
        note.textContent = "Your answers from before were filled in again. They are not sent until you submit the form.";
        form.parentNode.insertBefore(note, form);
      }
    }
    function save() {
      var data = {};
      kept(form).forEach(function (f) {
        data[f.name] = data[f.name] || [];
        if (!choice(f) || f.checked) { data[f.name].push(f.value); }
      });
      try { store.setItem(key, JSON.stringify(data)); } catch (e) { /* full or refused: nothing kept */ }
    }
    form.addEventListener("input", save);
    form.addEventListener("change", save);
  });
})();
