// The storefront's one script (served by the panel; no CDN). The pages work without it:
// it only filters the service list by category, shows the fields of the chosen service's
// type, computes the charge as the quantity changes, and applies the language switch.
(function () {
  "use strict";

  function each(selector, fn) { Array.prototype.forEach.call(document.querySelectorAll(selector), fn); }

  // The language switch applies a choice made with the mouse or a finger at once; from the
  // keyboard, the arrows only move through the list (WCAG 3.2.2) and Enter or the Apply
  // button applies it.
  each("[data-switch]", function (select) {
    var pointer = false;
    select.addEventListener("pointerdown", function () { pointer = true; });
    select.addEventListener("keydown", function (event) {
      pointer = false;
      if (event.key === "Enter") { event.preventDefault(); select.form.submit(); }
    });
    select.addEventListener("change", function () { if (pointer) { select.form.submit(); } });
  });

  var form = document.getElementById("order-form");
  if (!form) { return; }
  var category = document.getElementById("category");
  var service = document.getElementById("service");
  var charge = document.getElementById("charge");
  var drip = document.getElementById("dripfeed");
  var dripBox = document.getElementById("dripfeed-box");
  var dripFields = document.getElementById("dripfeed-fields");
  var description = document.getElementById("service-description");
  var limits = document.getElementById("limits");
  var average = document.getElementById("average-time");
  var warning = document.getElementById("charge-warning");
  var balance = form.getAttribute("data-balance");
  var lang = form.getAttribute("data-lang");
  var currency = form.getAttribute("data-currency");
  var money = new Intl.NumberFormat(lang, { style: "currency", currency: currency, maximumFractionDigits: 8 });

  function chosen() { return service.options[service.selectedIndex]; }

  function decimalUnits(text) {
    // The rate as an integer count of 1e-8 units, so the charge is exact to 8 places.
    var parts = String(text).split(".");
    var frac = ((parts[1] || "") + "00000000").slice(0, 8);
    return BigInt(parts[0] + frac);
  }

  function showCharge() {
    var option = chosen();
    if (!option) { charge.textContent = "—"; warning.hidden = true; return; }
    var how = option.getAttribute("data-charging");
    var rate = decimalUnits(option.getAttribute("data-rate"));
    var units = null;
    var count = null;
    if (how === "package") {
      units = rate;
    } else if (how === "quantity" || how.indexOf("lines:") === 0) {
      if (how === "quantity") {
        var q = (document.getElementById("f-quantity") || {}).value || "";
        count = /^\d{1,12}$/.test(q.trim()) ? BigInt(q.trim()) : null;
      } else {
        var area = document.getElementById("f-" + how.slice(6));
        var lines = area ? area.value.split(/\r?\n/).filter(function (l) { return l.trim(); }).length : 0;
        count = lines > 0 ? BigInt(lines) : null;
      }
      if (count !== null) { units = rate * count / 1000n; }
    }
    if (units !== null && drip.checked && option.getAttribute("data-dripfeed") === "yes") {
      var runs = document.getElementById("f-runs").value.trim();
      if (/^\d{1,6}$/.test(runs)) { units = units * BigInt(runs); }
    }
    charge.textContent = units === null ? "—" : money.format(Number(units) / 1e8);
    warn(option, count, units);
  }

  // What the command would refuse, said before sending: below the minimum, above the
  // maximum, more than the balance.
  function warn(option, count, units) {
    var text = "";
    if (count !== null && count !== undefined) {
      if (count < BigInt(option.getAttribute("data-min"))) {
        text = form.getAttribute("data-below").replace("{n}", option.getAttribute("data-min-text"));
      } else if (count > BigInt(option.getAttribute("data-max"))) {
        text = form.getAttribute("data-above").replace("{n}", option.getAttribute("data-max-text"));
      }
    }
    if (!text && units !== null && balance && units > decimalUnits(balance)) {
      text = form.getAttribute("data-poor");
    }
    warning.textContent = text;
    warning.hidden = !text;
  }

  function showFields() {
    var option = chosen();
    var type = option ? option.getAttribute("data-type") : "";
    each("#order-form .field", function (box) {
      var used = box.getAttribute("data-types").split("|").indexOf(type) >= 0;
      box.hidden = !used;
      var input = box.querySelector("input,textarea");
      if (input) { input.disabled = !used; }
    });
    var canDrip = option && option.getAttribute("data-dripfeed") === "yes";
    dripBox.hidden = !canDrip;
    drip.disabled = !canDrip;
    dripFields.hidden = !(canDrip && drip.checked);
    each("#dripfeed-fields input", function (input) { input.disabled = dripFields.hidden; });
    description.textContent = option ? option.getAttribute("data-description") : "";
    if (average) { average.textContent = option ? option.getAttribute("data-average") : ""; }
    if (limits) { limits.textContent = option ? option.getAttribute("data-limits") : ""; }
    showCharge();
  }

  function filterServices() {
    var wanted = category.value;
    var firstVisible = null;
    Array.prototype.forEach.call(service.options, function (option) {
      var match = option.getAttribute("data-category") === wanted;
      option.hidden = !match;
      option.disabled = !match;
      if (match && firstVisible === null) { firstVisible = option; }
    });
    if (chosen() && chosen().disabled && firstVisible) { firstVisible.selected = true; }
    showFields();
  }

  var start = chosen();
  if (start) { category.value = start.getAttribute("data-category"); }
  category.addEventListener("change", filterServices);
  service.addEventListener("change", showFields);
  drip.addEventListener("change", showFields);
  form.addEventListener("input", showCharge);
  filterServices();
}());
