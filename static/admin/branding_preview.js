// Live preview of the portal header on the merchant page: the colour and the name follow the inputs.
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }
  ready(function () {
    var preview = document.getElementById("branding-preview");
    if (!preview) { return; }
    var header = preview.querySelector(".portal-header");
    var name = preview.querySelector(".preview-name");
    var color = document.getElementById("id_brand_color");
    var legal = document.getElementById("id_legal_name");
    function update() {
      if (color && /^#[0-9A-Fa-f]{6}$/.test(color.value)) { header.style.background = color.value; }
      if (legal && legal.value) { name.textContent = legal.value; }
    }
    if (color) {
      color.addEventListener("input", update);
      if (color.type !== "color") {
        try { color.type = "color"; } catch (e) { /* old browsers keep the text input */ }
      }
    }
    if (legal) { legal.addEventListener("input", update); }
    update();
  });
})();
