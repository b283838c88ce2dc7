// Poll the invoice status until stamped or failed, then reload to show the result (no JS: meta refresh).
(function () {
  "use strict";
  var box = document.getElementById("factura");
  if (!box || !box.dataset.poll) return;
  var url = box.dataset.poll, delay = 1000;
  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (s && s.done) { window.location.reload(); return; }
        delay = Math.min(delay * 1.3, 5000);
        setTimeout(poll, delay);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, delay);
})();
