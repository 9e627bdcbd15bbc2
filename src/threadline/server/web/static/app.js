/* Threadline web UI: the few behaviours server-rendered HTML cannot do alone.
 * Times in the browser's time zone, session rows that expand in place, collapsible
 * span trees, long-payload expanders, custom time ranges, and live mode (SSE).
 * No inline scripts anywhere: the Content-Security-Policy allows /static only. */
(function () {
  "use strict";

  var timeFormat = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit"
  });

  function localizeTimes(root) {
    root.querySelectorAll("time[datetime]:not([data-local])").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date)) return;
      el.title = date.toISOString();
      el.textContent = timeFormat.format(date);
      el.setAttribute("data-local", "1");
    });
  }

  function markLongPayloads(root) {
    root.querySelectorAll(".collapsible .expander:not([data-ready])").forEach(function (b) {
      b.setAttribute("data-ready", "1");
    });
  }

  function init(root) {
    localizeTimes(root);
    markLongPayloads(root);
  }

  // --- session rows expand in place -------------------------------------------------
  function toggleSession(row) {
    var expansion = row.nextElementSibling;
    if (!expansion || !expansion.classList.contains("expansion")) return;
    var caret = row.querySelector(".caret");
    var open = expansion.hidden;
    expansion.hidden = !open;
    row.classList.toggle("open", open);
    if (caret) { caret.setAttribute("aria-expanded", String(open)); caret.textContent = open ? "▾" : "▸"; }
    if (open && !expansion.hasAttribute("data-loaded")) {
      expansion.setAttribute("data-loaded", "1");
      htmx.ajax("GET", row.getAttribute("data-expand"),
                { target: expansion.querySelector(".exp-body"), swap: "innerHTML" });
    }
  }

  // --- span tree: collapse hides every descendant ---------------------------------
  function toggleSubtree(button) {
    var row = button.closest(".span-row");
    var id = row.getAttribute("data-span");
    var collapse = button.getAttribute("aria-expanded") === "true";
    button.setAttribute("aria-expanded", String(!collapse));
    button.textContent = collapse ? "▸" : "▾";
    button.setAttribute("aria-label", collapse ? "Expand" : "Collapse");
    document.querySelectorAll(".span-row").forEach(function (other) {
      var ancestors = (other.getAttribute("data-ancestors") || "").split(" ");
      if (ancestors.indexOf(id) < 0) return;
      if (collapse) { other.hidden = true; return; }
      // Expanding: show it unless another collapsed ancestor still hides it.
      var stillHidden = ancestors.some(function (a) {
        var t = document.querySelector('.span-row[data-span="' + a + '"] .twisty');
        return a !== id && t && t.getAttribute("aria-expanded") === "false";
      });
      other.hidden = stillHidden;
    });
  }

  // Capture phase: a twisty click must not also select its span (htmx on the row).
  document.addEventListener("click", function (event) {
    var twisty = event.target.closest(".twisty");
    if (twisty) { event.stopPropagation(); event.preventDefault(); toggleSubtree(twisty); }
  }, true);

  document.addEventListener("click", function (event) {
    var target = event.target;
    var expander = target.closest(".expander");
    if (expander) {
      var box = expander.closest(".collapsible");
      var collapsed = box.classList.toggle("collapsed");
      expander.textContent = collapsed ? "Show all" : "Show less";
      return;
    }
    var spanRow = target.closest(".span-row");
    if (spanRow) {
      document.querySelectorAll(".span-row.selected").forEach(function (r) { r.classList.remove("selected"); });
      spanRow.classList.add("selected");
      return;
    }
    var sessionRow = target.closest("tr.session-row");
    if (sessionRow && !target.closest("a")) toggleSession(sessionRow);
  });

  // Forms that delete ask first: the question is in their data-confirm attribute.
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  document.addEventListener("keydown", function (event) {
    var row = event.target.closest && event.target.closest(".span-row");
    if (row && (event.key === "Enter" || event.key === " ")) { event.preventDefault(); row.click(); }
  });

  // --- filter bar: custom time range in the browser's zone ------------------------
  function pad(n) { return String(n).padStart(2, "0"); }
  function toLocalInput(iso) {
    var d = new Date(iso);
    if (isNaN(d)) return "";
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function setUpFilters() {
    var form = document.getElementById("filters");
    if (!form) return;
    var range = form.querySelector("#range");
    var custom = form.querySelector(".custom-range");
    form.querySelectorAll("[data-utc-target]").forEach(function (input) {
      var hidden = form.querySelector('input[name="' + input.getAttribute("data-utc-target") + '"]');
      if (hidden.value) input.value = toLocalInput(hidden.value);
    });
    range.addEventListener("change", function () { custom.hidden = range.value !== "custom"; });
    form.addEventListener("submit", function () {
      form.querySelectorAll("[data-utc-target]").forEach(function (input) {
        var hidden = form.querySelector('input[name="' + input.getAttribute("data-utc-target") + '"]');
        // datetime-local is wall time in this browser's zone; the server wants UTC.
        hidden.value = input.value && range.value === "custom" ? new Date(input.value).toISOString() : "";
      });
      // Leave empty fields out of the URL.
      form.querySelectorAll("input[name], select[name]").forEach(function (el) {
        if (!el.value) el.disabled = true;
      });
    });
  }

  // --- live mode -------------------------------------------------------------------
  var source = null;
  function setUpLive() {
    var toggle = document.getElementById("live");
    if (!toggle) return;
    var tbody = document.getElementById("live-rows");
    var after = toggle.getAttribute("data-after");
    function stop() { if (source) { source.close(); source = null; } document.body.classList.remove("live-on"); }
    function start() {
      var url = toggle.getAttribute("data-stream") + "&after=" + encodeURIComponent(after);
      source = new EventSource(url);
      document.body.classList.add("live-on");
      source.addEventListener("row", function (event) {
        var data = JSON.parse(event.data);
        // Replace the row (and a session's expansion row) if shown, then put it on top.
        tbody.querySelectorAll("tr[data-id], tr.expansion[data-for]").forEach(function (tr) {
          if (tr.getAttribute("data-id") === data.id || tr.getAttribute("data-for") === data.id) tr.remove();
        });
        tbody.insertAdjacentHTML("afterbegin", data.html);
        var table = tbody.closest(".table-wrap");
        if (table.hidden) {
          table.hidden = false;
          var empty = document.querySelector("[data-testid=empty-state]");
          if (empty) empty.remove();
        }
        var row = tbody.querySelector("tr[data-id]");
        if (row) { row.classList.add("fresh"); init(row.parentNode); }
      });
      source.addEventListener("watermark", function (event) { after = event.lastEventId; });
    }
    toggle.addEventListener("change", function () { toggle.checked ? start() : stop(); });
  }

  // --- session page: follows the conversation while it goes on ---------------------
  // The stream says which turns changed; the page then fetches itself and swaps in the
  // parts marked data-live-part (totals, timeline, transcript), so a new turn shows
  // exactly as a reload would show it, and anything else on the page (a form being
  // filled in) is left alone.
  function setUpSessionLive() {
    var transcript = document.querySelector("[data-session-stream]");
    if (!transcript || !window.EventSource) return;
    var url = transcript.getAttribute("data-session-stream") + "&after=" +
      encodeURIComponent(transcript.getAttribute("data-after"));
    var timer = null, loading = false, again = false;
    function refresh() {
      if (loading) { again = true; return; }
      loading = true;
      var atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
      fetch(location.href, { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (!html) return;
          var fresh = new DOMParser().parseFromString(html, "text/html");
          document.querySelectorAll("[data-live-part]").forEach(function (part) {
            var name = part.getAttribute("data-live-part");
            var next = fresh.querySelector('[data-live-part="' + name + '"]');
            if (!next) return;
            part.innerHTML = next.innerHTML;
            init(part);
            if (window.htmx) htmx.process(part);
          });
          // A reader following the conversation at its end stays at its end.
          if (atBottom) window.scrollTo(0, document.body.scrollHeight);
        })
        .catch(function () { /* the next event tries again */ })
        .finally(function () {
          loading = false;
          if (again) { again = false; refresh(); }
        });
    }
    var stream = new EventSource(url);
    document.body.classList.add("live-on");
    // Several spans of one turn arrive close together: one fetch for them all.
    stream.addEventListener("turn", function () { clearTimeout(timer); timer = setTimeout(refresh, 250); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    init(document);
    setUpFilters();
    setUpLive();
    setUpSessionLive();
  });
  document.addEventListener("htmx:afterSwap", function (event) { init(event.detail.target); });
})();
