// Live filtering of the fiscal data form. Every rule comes from the server in #catalogos (portal/forms.py
// catalog_matrix, built from invoicing/cfdi): the régimen ↔ UsoCFDI matrix, which RFC length is which persona,
// the separators people type in an RFC, the régimen de capital and what «Soy extranjero» sets (RFC, régimen, uso),
// and the words it writes, in the page's language.
// Nothing here decides a rule; it only looks up. Without this script the server applies the same values.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("catalogos").textContent);
  var text = data.text;  // the page's words, in its language (portal/forms.py _script_text)
  var rfc = document.getElementById("id_rfc"), name = document.getElementById("id_name");
  var reg = document.getElementById("id_tax_regime"), uso = document.getElementById("id_cfdi_use");
  var persona = document.getElementById("persona"), capitalHint = document.getElementById("name-capital");
  var usoHint = document.getElementById("id_cfdi_use-hint");
  if (!rfc || !reg || !uso) return;
  var capital = new RegExp(data.capital, "i"), separators = new RegExp(data.rfc_separators, "g");

  function clean(v) { return v.replace(separators, "").toUpperCase(); }
  function kind() { return data.personas[String(clean(rfc.value).length)] || ""; }

  function fill(select, codes, names, placeholder) {
    var current = select.value, keep = false;
    select.textContent = "";
    select.add(new Option(placeholder, ""));
    codes.forEach(function (code) {
      select.add(new Option(code + " · " + names[code], code));
      if (code === current) keep = true;
    });
    select.value = keep ? current : "";
  }

  function update() {
    var k = kind(), lists = data.matrix[k];
    persona.textContent = k === "moral" ? text.moral : k === "fisica" ? text.fisica : "";
    fill(reg, lists.regimenes, data.regimenes, text.regimen);
    fill(uso, lists.usos[reg.value] || lists.usos[""], data.usos, text.uso);
    // Only a use this régimen allows is suggested (the server's choice, per régimen, in the matrix).
    var suggested = (lists.sugerido || {})[reg.value];
    if (usoHint) {
      usoHint.textContent = suggested ? data.uso_hint.replace("{code}", suggested)
        .replace("{description}", data.usos[suggested]) : data.uso_hint_none;
    }
  }

  var foreign = document.getElementById("id_foreign");
  var foreignFields = document.getElementById("foreign-fields"), national = document.getElementById("national-fields");

  function foreignMode(event) {
    var on = !!(foreign && foreign.checked), f = data.foreign;
    if (foreignFields) foreignFields.hidden = !on;
    if (national) national.hidden = on;
    rfc.readOnly = on;
    if (on) rfc.value = f.rfc;
    else if (event && clean(rfc.value) === f.rfc) rfc.value = "";
    if (event && !on && foreignFields) {
      // Left filled, they would be refused with a Mexican RFC (they are only a foreigner's data).
      foreignFields.querySelectorAll("input, select").forEach(function (el) { el.value = ""; });
    }
    update();
    if (on) {
      reg.value = f.tax_regime;
      update();
      uso.value = f.cfdi_use;
    }
    // Disabled selects are not sent: the server sets a foreigner's régimen and uso itself.
    reg.disabled = on;
    uso.disabled = on;
  }

  function nameHint() {
    var m = capital.exec(name.value.trim());
    capitalHint.hidden = !m;
    capitalHint.textContent = m ? text.capital.replace("{capital}", m[0].trim().toUpperCase()) : "";
  }

  rfc.addEventListener("input", update);
  rfc.addEventListener("blur", function () { rfc.value = clean(rfc.value); });
  reg.addEventListener("change", update);
  name.addEventListener("input", nameHint);
  if (foreign) foreign.addEventListener("change", foreignMode);
  name.addEventListener("blur", function () { name.value = name.value.toUpperCase(); });
  foreignMode();
  nameHint();
  var summary = document.getElementById("errores") || document.getElementById("errores-constancia");
  if (summary) summary.focus();
})();
