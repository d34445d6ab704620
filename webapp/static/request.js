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
