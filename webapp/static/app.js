/* synthgate pages: live progress, live dashboard rows, method descriptions.
   Served from 'self' only (the pages' CSP forbids inline scripts). Reads the
   JSON API with the session cookie (GET only). */
(function () {
  "use strict";
  var ACTIVE = ["queued", "running"];
  var STAGES = {
    queued: "Waiting for a worker", starting: "Starting", load: "Loading the table",
    split: "Holding out a real test split", fit: "Fitting the model (the budget is spent here)",
    sample: "Sampling synthetic rows", postprocess: "Disclosure control",
    evaluate: "Evaluating fidelity, utility and risk", write: "Writing the report and artifacts", done: "Done"
  };

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); });
  }

  function pct(value) { return Math.round((value || 0) * 100) + "%"; }

  // the running stage's estimated time left, in the words the server renders (hooks.eta_text)
  function etaText(seconds) {
    if (seconds === null || seconds === undefined) { return ""; }
    var secs = Math.max(0, Math.floor(seconds));
    if (secs < 60) { return "about " + Math.max(secs, 1) + " s left in this stage"; }
    return "about " + Math.ceil(secs / 60) + " min left in this stage";
  }

  // ---- release page: poll the job while it is queued or running -----------------------------
  var card = document.querySelector("[data-poll-release]");
  if (card) {
    var url = card.getAttribute("data-poll-release");
    var bar = document.getElementById("job-progress");
    var percent = document.getElementById("job-percent");
    var stage = document.getElementById("job-stage");
    var message = document.getElementById("job-message");
    var eta = document.getElementById("job-eta");
    var statusEl = document.getElementById("job-status");
    var failures = 0;
    var tick = function () {
      getJSON(url).then(function (data) {
        failures = 0;
        var r = data.release;
        bar.setAttribute("value", String(r.progress));
        percent.textContent = pct(r.progress);
        stage.textContent = STAGES[r.stage] || r.stage || "";
        stage.setAttribute("data-stage", r.stage || "");
        message.textContent = r.message || "";
        if (eta) { eta.textContent = etaText(r.eta_seconds); }
        if (statusEl.getAttribute("data-status") !== r.status) {
          statusEl.setAttribute("data-status", r.status);
          statusEl.innerHTML = "";
          var badge = document.createElement("span");
          badge.className = "status status-" + r.status;
          badge.textContent = r.status.replace(/_/g, " ");
          statusEl.appendChild(badge);
        }
        if (ACTIVE.indexOf(r.status) === -1) {
          window.setTimeout(function () { window.location.reload(); }, 400);
        } else {
          window.setTimeout(tick, 700);
        }
      }).catch(function () {
        failures += 1;
        window.setTimeout(tick, Math.min(10000, 1000 * failures));
      });
    };
    window.setTimeout(tick, 300);
  }

  // ---- release page (stewards): reload once the re-runs of post-processing have finished -------
  var candidatesCard = document.querySelector("[data-poll-candidates]");
  if (candidatesCard) {
    var candidatesUrl = candidatesCard.getAttribute("data-poll-candidates");
    var candidateFailures = 0;
    var pollCandidates = function () {
      getJSON(candidatesUrl).then(function (data) {
        candidateFailures = 0;
        var running = data.candidates.some(function (c) { return ACTIVE.indexOf(c.status) !== -1; });
        if (running) {
          window.setTimeout(pollCandidates, 1000);
        } else {
          window.location.reload();
        }
      }).catch(function () {
        candidateFailures += 1;
        window.setTimeout(pollCandidates, Math.min(10000, 1000 * candidateFailures));
      });
    };
    window.setTimeout(pollCandidates, 1000);
  }

  // ---- dashboard and dataset tables: live rows -------------------------------------------------
  var rows = Array.prototype.slice.call(document.querySelectorAll("[data-poll-row]"));
  if (rows.length) {
    var pollRows = function () {
      var pending = rows.filter(function (row) { return row.hasAttribute("data-poll-row"); });
      if (!pending.length) { return; }
      Promise.all(pending.map(function (row) {
        return getJSON(row.getAttribute("data-poll-row")).then(function (data) {
          var r = data.release;
          var p = row.querySelector(".js-progress progress");
          if (p) { p.setAttribute("value", String(r.progress)); }
          var t = row.querySelector(".js-progress .pct");
          if (t) { t.textContent = pct(r.progress); }
          var s = row.querySelector(".js-status .status");
          if (s) { s.className = "status status-" + r.status; s.textContent = r.status.replace(/_/g, " "); }
          if (ACTIVE.indexOf(r.status) === -1) { row.removeAttribute("data-poll-row"); }
        }).catch(function () { /* try again next round */ });
      })).then(function () { window.setTimeout(pollRows, 1500); });
    };
    window.setTimeout(pollRows, 1000);
  }

  // ---- request form: show the chosen method's description and options -------------------------
  var select = document.querySelector("[data-method-select]");
  if (select) {
    var show = function () {
      document.querySelectorAll(".method-info").forEach(function (el) {
        el.hidden = el.getAttribute("data-method") !== select.value;
      });
    };
    select.addEventListener("change", show);
    show();
  }
  // ---- schema editor (stewards): show the inputs a kind uses; an accepted suggestion fills its fields ---
  var editor = document.getElementById("schema-editor");
  if (editor) {
    editor.classList.add("js-editor");  // without this class every input stays visible (a plain form)
    editor.querySelectorAll("[data-editor-kind]").forEach(function (kind) {
      kind.addEventListener("change", function () {
        kind.closest("tbody").setAttribute("data-kind", kind.value);
      });
    });
    var roleSelects = Array.prototype.slice.call(editor.querySelectorAll("[data-editor-role]"));
    roleSelects.forEach(function (role) {
      role.addEventListener("change", function () {
        if (role.value !== "target") { return; }
        roleSelects.forEach(function (other) {  // one target per table
          if (other !== role && other.value === "target") { other.value = ""; }
        });
      });
    });
    editor.querySelectorAll("[data-accept]").forEach(function (box) {
      var id = box.getAttribute("data-accept");
      var role = document.getElementById(id + "-role");
      var hierarchy = document.getElementById(id + "-hierarchy");
      var wanted = { role: box.getAttribute("data-role"), hierarchy: box.getAttribute("data-hierarchy") };
      var before = { role: role.value, hierarchy: hierarchy.value };
      box.addEventListener("change", function () {
        if (box.checked) {
          before = { role: role.value, hierarchy: hierarchy.value };
          if (wanted.role) { role.value = wanted.role; role.dispatchEvent(new Event("change")); }
          if (wanted.hierarchy) { hierarchy.value = wanted.hierarchy; }
        } else {
          role.value = before.role;
          hierarchy.value = before.hierarchy;
        }
      });
    });
  }
})();
