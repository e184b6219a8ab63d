/* Images for module text: a "Copy" button beside each Markdown line. Progressive: without this file the line
   is plain text to select and copy by hand; without the clipboard API no button is added. */
(function () {
  "use strict";
  if (!navigator.clipboard || !window.isSecureContext) { return; }
  var status = document.getElementById("copy-status");
  document.querySelectorAll("code.upload-snippet").forEach(function (code) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "link-button upload-copy";
    button.textContent = "Copy";
    button.setAttribute("aria-describedby", code.id);
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(code.textContent).then(function () {
        if (status) { status.textContent = "Copied: " + code.textContent; }
      }, function () {
        if (status) { status.textContent = "Could not copy: select the line and copy it by hand."; }
      });
    });
    code.insertAdjacentElement("afterend", button);
  });
})();
