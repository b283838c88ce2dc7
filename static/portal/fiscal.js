// Live filtering of the fiscal data form; the server applies the same rules (portal/forms.py).
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("catalogos").textContent);
  var rfc = document.getElementById("id_rfc"), name = document.getElementById("id_name");
  var reg = document.getElementById("id_tax_regime"), uso = document.getElementById("id_cfdi_use");
  var persona = document.getElementById("persona"), capitalHint = document.getElementById("name-capital");
  if (!rfc || !reg || !uso) return;
  var capital = new RegExp(data.capital, "i");

  function clean(v) { return v.replace(/[\s\-_.]/g, "").toUpperCase(); }
  function kind() { var n = clean(rfc.value).length; return n === 12 ? "m" : n === 13 ? "f" : ""; }

  function fill(select, entries, placeholder) {
    var current = select.value, keep = false;
    select.textContent = "";
    select.add(new Option(placeholder, ""));
    entries.forEach(function (e) {
      select.add(new Option(e[0] + " · " + e[1], e[0]));
      if (e[0] === current) keep = true;
    });
    select.value = keep ? current : "";
  }

  function update() {
    var k = kind(), r;
    persona.textContent = k === "m" ? "RFC de persona moral (empresa): te mostramos sus regímenes."
      : k === "f" ? "RFC de persona física: te mostramos sus regímenes." : "";
    var regs = Object.keys(data.regimenes).filter(function (c) {
      var x = data.regimenes[c]; return !k || (k === "m" ? x[2] : x[1]);
    }).map(function (c) { return [c, data.regimenes[c][0]]; });
    fill(reg, regs, "Elige tu régimen fiscal");
    r = reg.value;
    var usos = Object.keys(data.usos).filter(function (c) {
      var u = data.usos[c];
      return (!k || (k === "m" ? u[2] : u[1])) && (!r || u[3].indexOf(r) >= 0);
    }).map(function (c) { return [c, data.usos[c][0]]; });
    fill(uso, usos, "Elige el uso de la factura");
  }

  function nameHint() {
    var m = capital.exec(name.value.trim());
    capitalHint.hidden = !m;
    capitalHint.textContent = m ? "Quitaremos «" + m[0].trim().toUpperCase() +
      "»: el SAT pide el nombre sin el régimen de capital, como en tu Constancia." : "";
  }

  rfc.addEventListener("input", update);
  rfc.addEventListener("blur", function () { rfc.value = clean(rfc.value); });
  reg.addEventListener("change", update);
  name.addEventListener("input", nameHint);
  name.addEventListener("blur", function () { name.value = name.value.toUpperCase(); });
  update();
  nameHint();
  var summary = document.getElementById("errores");
  if (summary) summary.focus();
})();
