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
