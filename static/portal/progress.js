// Poll the invoice status until stamped or failed, then reload to show the result (no JS: meta refresh).
// When the server says the wait is long (PORTAL_SLOW_STAMP_SECONDS), show what is happening and that the
// invoice will arrive by email; the server writes the words, this only shows them.
(function () {
  "use strict";
  var box = document.getElementById("factura");
  if (!box || !box.dataset.poll) return;
  var url = box.dataset.poll, delay = 1000;
  var slowBox = document.getElementById("lento"), what = document.getElementById("lento-que");
  var normal = document.getElementById("progreso-normal"), late = document.getElementById("progreso-lento");
  function show(s) {
    if (!s.slow || !slowBox) return;
    if (what && s.message && what.textContent !== s.message) what.textContent = s.message;
    slowBox.hidden = false;
    if (normal) normal.hidden = true;
    if (late) late.hidden = false;
  }
  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (s && s.done) { window.location.reload(); return; }
        if (s) show(s);
        delay = Math.min(delay * 1.3, 5000);
        setTimeout(poll, delay);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, delay);
})();
