/* synthgate request form: the method advice follows the epsilon typed.
   Served from 'self' only (the pages' CSP forbids inline scripts). The advice
   is computed by the server from public facts only (privacy/advice.py). */
(function () {
  "use strict";
  var box = document.getElementById("advice");
  var epsilon = document.getElementById("epsilon");
  var select = document.querySelector("[data-method-select]");
  if (!box || !epsilon || !select) { return; }
  var url = box.getAttribute("data-advice-url");
  var method = document.getElementById("advice-method");
  var reason = document.getElementById("advice-reason");
  // the button works only with this script: it is made here, not in the page
  var use = document.createElement("button");
  use.type = "button";
  use.className = "small";
  use.id = "advice-use";
  use.textContent = "Use it";
  box.appendChild(document.createTextNode(" "));
  box.appendChild(use);
  var timer = null;
  var asked = 0;

  function offerUse() {
    var offered = Array.prototype.some.call(select.options, function (o) { return o.value === method.textContent; });
    var hide = !offered || select.value === method.textContent;
    use.hidden = hide;
    use.style.display = hide ? "none" : "";  // the stylesheet's button display would override [hidden]
  }

  function refresh() {
    var ticket = ++asked;
    fetch(url + "?epsilon=" + encodeURIComponent(epsilon.value.trim()),
          { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (data) {
        if (ticket !== asked) { return; }  // an older answer arriving late
        method.textContent = data.advice.method;
        reason.textContent = "— " + data.advice.reason;
        box.setAttribute("data-epsilon", data.advice.epsilon === null ? "" : String(data.advice.epsilon));
        offerUse();
      })
      .catch(function () { /* the advice shown stays; the form works without it */ });
  }

  epsilon.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 250);
  });
  select.addEventListener("change", offerUse);
  use.addEventListener("click", function () {
    select.value = method.textContent;
    select.dispatchEvent(new Event("change"));
  });
  offerUse();
})();

/* The time estimate follows the method, the rows, the options and epsilon: the server
   computes it from public facts only (privacy/estimate.py, GET .../estimate). */
(function () {
  "use strict";
  var box = document.getElementById("estimate");
  var select = document.querySelector("[data-method-select]");
  if (!box || !select) { return; }
  var url = box.getAttribute("data-estimate-url");
  var text = document.getElementById("estimate-text");
  var detail = document.getElementById("estimate-detail");
  var fields = ["epsilon", "delta", "rows", "options"].map(function (id) { return document.getElementById(id); });
  var timer = null;
  var asked = 0;

  function describe(est) {
    var limit = est.limit_minutes;
    var line = "fit " + est.fit_seconds + " s + report " + est.report_seconds + " s (CPU), for " +
      Number(est.rows).toLocaleString("en") + " rows x " + est.columns + " columns; " +
      (limit === null ? "no limit" : "the dataset's limit is " + limit + " min");
    if (est.over_limit) {
      line += ". Over the limit: it would be refused";
      if (est.suggestions && est.suggestions.length) { line += "; under it with " + est.suggestions.join(", "); }
    }
    return line;
  }

  function query() {
    var params = ["method=" + encodeURIComponent(select.value)];
    ["epsilon", "delta", "rows"].forEach(function (id, i) {
      var el = fields[i];
      if (el && el.value.trim()) { params.push(id + "=" + encodeURIComponent(el.value.trim())); }
    });
    var options = fields[3];
    if (options) {
      options.value.split("\n").forEach(function (line) {
        line = line.trim();
        if (!line || line.charAt(0) === "#" || line.indexOf("=") < 1) { return; }
        var key = line.slice(0, line.indexOf("=")).trim();
        var value = line.slice(line.indexOf("=") + 1).trim();
        params.push("option=" + encodeURIComponent(key + "=" + value));
      });
    }
    return params.join("&");
  }

  function refresh() {
    var ticket = ++asked;
    fetch(url + "?" + query(),
          { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (res) {
        if (ticket !== asked) { return; }  // an older answer arriving late
        if (!res.ok) {
          text.textContent = "—";
          detail.textContent = (res.body.error && res.body.error.message) || "no estimate for these settings";
          box.classList.remove("warn");
          return;
        }
        var est = res.body.estimate;
        text.textContent = est.text;
        detail.textContent = describe(est);
        box.classList.toggle("warn", !!est.over_limit);
      })
      .catch(function () { /* the estimate shown stays; the form works without it */ });
  }

  function later() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 250);
  }

  select.addEventListener("change", refresh);
  fields.forEach(function (el) { if (el) { el.addEventListener("input", later); } });
})();
