/* The front page's "Copy" button: puts the blog's fediverse handle on the clipboard, and
   says so in a live region (screen readers hear it). Without JavaScript the button stays
   hidden and the handle can be selected by hand. */
(function () {
  "use strict";
  var button = document.getElementById("fc-copy-handle");
  var field = document.getElementById("fc-handle-field");
  var status = document.getElementById("fc-copy-status");
  if (!button || !field || !status) return;
  button.hidden = false;
  function done(ok) {
    status.textContent = ok ? "Copied " + field.value : "Press Ctrl+C (or ⌘C) to copy";
    if (!ok) { field.focus(); field.select(); }
  }
  function fallback() {
    field.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    done(ok);
  }
  button.addEventListener("click", function () {
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(field.value).then(function () { done(true); }, fallback);
    } else {
      fallback();
    }
  });
})();
