/* kaptrain: progressive enhancement only; every page works without this file.
   Seat time: while a module page is visible and the learner has interacted within the last
   interval, send a heartbeat each interval. The server credits at most one interval per beat,
   so idle or hidden time is never counted. */
(function () {
  "use strict";
  var lesson = document.querySelector("[data-heartbeat-url]");
  if (!lesson || !window.fetch) { return; }
  var url = lesson.getAttribute("data-heartbeat-url");
  var csrf = lesson.getAttribute("data-csrf");
  var seconds = parseInt(lesson.getAttribute("data-heartbeat-seconds"), 10) || 30;
  var lastActivity = Date.now();
  ["scroll", "keydown", "mousemove", "pointerdown", "touchstart", "focusin"].forEach(function (name) {
    window.addEventListener(name, function () { lastActivity = Date.now(); }, { passive: true });
  });
  window.setInterval(function () {
    var active = Date.now() - lastActivity < seconds * 1000;
    if (document.visibilityState !== "visible" || !active) { return; }
    fetch(url, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrf } })
      .catch(function () { /* offline: this interval is simply not counted */ });
  }, seconds * 1000);
})();

/* Quiz time limit: keep the "minutes left" text current and announce the last 5 minutes and
   the last minute to screen readers. The server enforces the limit; this only informs. */
(function () {
  "use strict";
  var timer = document.getElementById("timer");
  if (!timer) { return; }
  var left = timer.querySelector(".timer-left");
  var alertBox = document.getElementById("timer-alert");
  var deadline = Date.now() + parseInt(timer.getAttribute("data-seconds-left"), 10) * 1000;
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
        alertBox.textContent = mark === 1 ? "One minute left to submit." : "Five minutes left to submit.";
      }
    });
    if (seconds > 0) { window.setTimeout(tick, 15000); }
  }
  tick();
})();

/* Registration: preselect the browser's time zone while the select is still empty. Without this
   script the select stays on "Not chosen" and the site shows times in UTC. */
(function () {
  "use strict";
  var select = document.querySelector("select[data-detect-time-zone]");
  if (!select || select.value || !window.Intl) { return; }
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  var known = Array.prototype.some.call(select.options, function (o) { return o.value === zone; });
  if (zone && known) { select.value = zone; }
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
