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
  // This year's times without the year: two time columns of a list would otherwise push
  // its inputs and outputs past a laptop's width. The tooltip keeps the whole time.
  var thisYearFormat = new Intl.DateTimeFormat(undefined, {
    month: "short", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit"
  });
  // A list's times to the minute: a row needs no seconds, and its columns the room.
  var minuteFormat = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit"
  });
  var thisYearMinuteFormat = new Intl.DateTimeFormat(undefined, {
    month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit"
  });
  var thisYear = new Date().getFullYear();

  function localizeTimes(root) {
    root.querySelectorAll("time[datetime]:not([data-local])").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date)) return;
      el.title = date.toISOString();
      var recent = date.getFullYear() === thisYear;
      var format = el.classList.contains("to-minute")
        ? (recent ? thisYearMinuteFormat : minuteFormat)
        : (recent ? thisYearFormat : timeFormat);
      el.textContent = format.format(date);
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
    fillAuthors(root);
    hideScoreColumns(root);
  }

  // --- the score columns a reader hid (Columns menu), kept in this browser --------
  var HIDDEN_SCORES_KEY = "threadline.hidden-score-columns";
  function hiddenScores() {
    try { return JSON.parse(window.localStorage.getItem(HIDDEN_SCORES_KEY) || "[]"); } catch (e) { return []; }
  }
  function hideScoreColumns(root) {
    var hidden = hiddenScores();
    (root || document).querySelectorAll('[data-col^="score:"]').forEach(function (cell) {
      cell.hidden = hidden.indexOf(cell.getAttribute("data-col").slice(6)) >= 0;
    });
  }
  function setUpColumnsMenu() {
    var menu = document.querySelector("[data-testid=columns-menu]");
    if (!menu) return;
    var list = menu.querySelector(".menu");
    list.textContent = "";
    var heads = document.querySelectorAll('th.score-col[data-col^="score:"]');
    menu.hidden = heads.length === 0;
    heads.forEach(function (th) {
      var name = th.getAttribute("data-col").slice(6);
      var label = document.createElement("label");
      var box = document.createElement("input");
      box.type = "checkbox";
      box.checked = hiddenScores().indexOf(name) < 0;
      box.addEventListener("change", function () {
        var hidden = hiddenScores().filter(function (n) { return n !== name; });
        if (!box.checked) hidden.push(name);
        try { window.localStorage.setItem(HIDDEN_SCORES_KEY, JSON.stringify(hidden)); } catch (e) { /* private mode */ }
        hideScoreColumns(document);
      });
      label.append(box, document.createTextNode(name));
      list.append(label);
    });
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
      // A score sort's order goes with it only: another sort takes none (a 400).
      var sort = form.querySelector('select[name="sort"]');
      var order = form.querySelector('input[name="order"]');
      if (sort && order && !/^score(_label)?:/.test(sort.value)) order.disabled = true;
    });
  }

  // --- live mode -------------------------------------------------------------------
  var source = null;
  function setUpLive() {
    var toggle = document.getElementById("live");
    if (!toggle) return;
    var tbody = document.getElementById("live-rows");
    var after = toggle.getAttribute("data-after");
    var reloading = false;
    function stop() { if (source) { source.close(); source = null; } document.body.classList.remove("live-on"); }
    // A row brought a score name the table has no column for: the page fetches itself
    // and takes its table (header, rows) and its stream's columns and position, as a
    // reload would show them, and goes on from there.
    function reloadTable() {
      if (reloading) return;
      reloading = true;
      stop();
      fetch(location.href, { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          var fresh = html && new DOMParser().parseFromString(html, "text/html");
          var wrap = fresh && fresh.querySelector(".table-wrap");
          var freshToggle = fresh && fresh.getElementById("live");
          if (!wrap || !freshToggle) return;
          var old = tbody.closest(".table-wrap");
          old.replaceWith(wrap);
          tbody = document.getElementById("live-rows");
          toggle.setAttribute("data-stream", freshToggle.getAttribute("data-stream"));
          after = freshToggle.getAttribute("data-after");
          var empty = document.querySelector("[data-testid=empty-state]");
          if (empty && !wrap.hidden) empty.remove();
          init(wrap);
          setUpColumnsMenu();
          if (window.htmx) htmx.process(wrap);
        })
        .catch(function () { /* the stream starts again from where it was */ })
        .finally(function () {
          reloading = false;
          if (toggle.checked) start();
        });
    }
    function start() {
      var url = toggle.getAttribute("data-stream") + "&after=" + encodeURIComponent(after);
      source = new EventSource(url);
      document.body.classList.add("live-on");
      source.addEventListener("row", function (event) {
        var data = JSON.parse(event.data);
        if (data.new_column) { reloadTable(); return; }
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
      // A score form open in a turn would be replaced with the turn: wait until the
      // reviewer saves or cancels it.
      if (document.querySelector("[data-live-part] .score-form")) {
        clearTimeout(timer); timer = setTimeout(refresh, 1000); return;
      }
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


  // --- scores and notes: the score form, the author's name, form errors ------------
  var AUTHOR_KEY = "threadline.author";

  function rememberedAuthor() {
    try { return window.localStorage.getItem(AUTHOR_KEY) || ""; } catch (e) { return ""; }
  }
  function rememberAuthor(name) {
    try { window.localStorage.setItem(AUTHOR_KEY, name); } catch (e) { /* private mode */ }
    // The page's other forms (the notes form, an open score form) sign with it too.
    document.querySelectorAll('input[name="author"]').forEach(function (input) {
      if (!input.value) input.value = name;
    });
  }

  function fillAuthors(root) {
    root.querySelectorAll('input[name="author"]:not([data-filled])').forEach(function (input) {
      input.setAttribute("data-filled", "1");
      if (!input.value) input.value = rememberedAuthor();
    });
  }

  function scoreConfigs() {
    var holder = document.getElementById("score-configs");
    if (!holder) return {};
    var byName = {};
    try {
      JSON.parse(holder.getAttribute("data-configs") || "[]").forEach(function (c) { byName[c.name] = c; });
    } catch (e) { /* no configurations */ }
    return byName;
  }

  // Show the value input of the chosen type; a configured name fixes the type, the
  // range or the labels. Hidden inputs are disabled, so only the shown one is sent.
  function shapeScoreForm(form) {
    var config = scoreConfigs()[form.elements.name.value.trim()];
    var typeSelect = form.elements.data_type;
    if (config) typeSelect.value = config.data_type;
    typeSelect.disabled = !!config;
    form.querySelector(".sf-type").hidden = !!config;
    var type = typeSelect.value;
    form.querySelectorAll(".sf-value [data-for]").forEach(function (box) {
      var on = box.getAttribute("data-for") === type;
      box.hidden = !on;
      box.querySelectorAll("input, select").forEach(function (el) { el.disabled = !on; });
    });
    var number = form.querySelector('input[type="number"]');
    var range = form.querySelector(".sf-range");
    number.removeAttribute("min"); number.removeAttribute("max"); range.textContent = "";
    if (config && type === "numeric") {
      if (config.min_value !== null) number.min = config.min_value;
      if (config.max_value !== null) number.max = config.max_value;
      if (config.min_value !== null && config.max_value !== null) range.textContent = config.min_value + " to " + config.max_value;
      else if (config.min_value !== null) range.textContent = "at least " + config.min_value;
      else if (config.max_value !== null) range.textContent = "at most " + config.max_value;
    }
    var labels = form.querySelector(".sf-labels");
    var labelText = form.querySelector(".sf-label-text");
    var listed = !!(config && config.labels && config.labels.length);
    if (type === "categorical") {
      labels.hidden = !listed; labels.disabled = !listed;
      labelText.hidden = listed; labelText.disabled = listed;
      if (listed && labels.getAttribute("data-for-name") !== config.name) {
        labels.textContent = "";
        config.labels.forEach(function (label) {
          var option = document.createElement("option");
          option.value = label; option.textContent = label;
          labels.appendChild(option);
        });
        labels.setAttribute("data-for-name", config.name);
      }
    }
    form.querySelectorAll(".sf-value input, .sf-value select").forEach(function (el) {
      el.required = !el.disabled && (el.type !== "radio" || el.value === "true");
    });
  }

  function openScoreForm(panel, chip) {
    var slot = panel.querySelector(".score-form-slot");
    var template = document.getElementById("score-form-template");
    if (!slot || !template) return;
    slot.textContent = "";
    var form = template.content.firstElementChild.cloneNode(true);
    form.elements.session_id.value = panel.getAttribute("data-session-id");
    form.elements.trace_id.value = panel.getAttribute("data-trace-id");
    form.elements.span_id.value = panel.getAttribute("data-span-id");
    form.elements.compact.value = panel.getAttribute("data-compact") || "";
    form.elements.author.value = rememberedAuthor();
    if (chip) {
      // Changing a score: the same id, its current value.
      form.elements.id.value = chip.getAttribute("data-score-id");
      form.elements.name.value = chip.getAttribute("data-name");
      form.elements.name.readOnly = true;
      form.elements.data_type.value = chip.getAttribute("data-type");
      form.elements.comment.value = chip.getAttribute("data-comment");
      form.elements.author.value = chip.getAttribute("data-author") || rememberedAuthor();
      form.querySelector('button[type="submit"]').textContent = "Save change";
    }
    slot.appendChild(form);
    shapeScoreForm(form);
    if (chip) {
      var value = chip.getAttribute("data-value");
      form.querySelectorAll('.sf-value [name="value"]').forEach(function (el) {
        if (el.disabled) return;
        if (el.type === "radio") el.checked = el.value === value; else el.value = value;
      });
    }
    form.elements.name.addEventListener("input", function () { shapeScoreForm(form); });
    form.elements.data_type.addEventListener("change", function () { shapeScoreForm(form); });
    htmx.process(form);
    panel.querySelector(".score-add").setAttribute("aria-expanded", "true");
    (chip ? form.elements.comment : form.elements.name).focus();
  }

  function closeScoreForm(panel) {
    panel.querySelector(".score-form-slot").textContent = "";
    panel.querySelector(".score-add").setAttribute("aria-expanded", "false");
  }

  document.addEventListener("click", function (event) {
    var add = event.target.closest(".score-add");
    if (add) {
      var panel = add.closest(".scores-panel");
      if (add.getAttribute("aria-expanded") === "true") closeScoreForm(panel); else openScoreForm(panel, null);
      return;
    }
    var edit = event.target.closest(".sc-edit");
    if (edit) { openScoreForm(edit.closest(".scores-panel"), edit.closest(".score-chip")); return; }
    var cancel = event.target.closest(".sf-cancel");
    if (cancel) closeScoreForm(cancel.closest(".scores-panel"));
  });

  // The name a reviewer signs with is kept for their next score or note.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.detail.elt;
    var author = form && form.elements && form.elements.author;
    if (author) rememberAuthor(author.value.trim());
    var box = errorBox(form);
    if (box) box.hidden = true;
  });

  function errorBox(elt) {
    if (!elt || !elt.closest) return null;
    var form = elt.closest("form");
    var own = form && form.querySelector(".form-error");
    if (own) return own;
    var panel = elt.closest(".scores-panel, .notes-panel");
    return panel && panel.querySelector(".panel-error, .form-error");
  }

  // A refused form post answers {"error": "..."}: show it beside the form (htmx swaps
  // nothing for a 4xx or 5xx, see base.html).
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr.status < 400) return;
    // detail.elt is the swap target here; the element that sent the request is in
    // requestConfig.
    var sender = event.detail.requestConfig ? event.detail.requestConfig.elt : event.detail.elt;
    var box = errorBox(sender);
    if (!box) return;
    var message = "The server refused this (" + event.detail.xhr.status + ").";
    try { message = JSON.parse(event.detail.xhr.responseText).error || message; } catch (e) { /* not JSON */ }
    box.textContent = message;
    box.hidden = false;
  });
  document.addEventListener("htmx:sendError", function (event) {
    var box = errorBox(event.detail.elt);
    if (box) { box.textContent = "The server cannot be reached: try again."; box.hidden = false; }
  });

  // Search inside a session: the turn of the current match is marked by the server;
  // its matching words are marked here, in the text as shown, and it is scrolled to.
  function markFound() {
    var turn = document.querySelector("article.turn.found");
    if (!turn) { return; }
    var words = [];
    try { words = JSON.parse(turn.getAttribute("data-marks") || "[]"); } catch (e) { words = []; }
    words = words.filter(function (w) { return w; }).map(function (w) {
      return w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    });
    if (words.length) {
      var pattern = new RegExp("(" + words.join("|") + ")", "gi");
      var walker = document.createTreeWalker(turn, NodeFilter.SHOW_TEXT);
      var nodes = [];
      while (walker.nextNode()) { nodes.push(walker.currentNode); }
      nodes.forEach(function (node) {
        var text = node.nodeValue;
        pattern.lastIndex = 0;
        if (!pattern.test(text)) { return; }
        var fragment = document.createDocumentFragment();
        var at = 0;
        text.replace(pattern, function (found, _group, offset) {
          fragment.appendChild(document.createTextNode(text.slice(at, offset)));
          var mark = document.createElement("mark");
          mark.className = "find-mark";
          mark.textContent = found;
          fragment.appendChild(mark);
          at = offset + found.length;
          return found;
        });
        fragment.appendChild(document.createTextNode(text.slice(at)));
        node.parentNode.replaceChild(fragment, node);
      });
    }
    turn.scrollIntoView({ block: "center" });
  }

  // The evaluator form shows the score's fields of the chosen type only: a range for a
  // number, labels for a label (a good/bad score has neither). Hidden, they are
  // disabled, so not sent; shown again, they keep what was typed.
  function setUpEvaluatorForm() {
    var form = document.querySelector(".evaluator-form");
    if (!form) return;
    var type = form.elements.score_type;
    function shape() {
      form.querySelectorAll("[data-for-type]").forEach(function (field) {
        field.hidden = field.getAttribute("data-for-type") !== type.value;
        field.querySelectorAll("input").forEach(function (el) { el.disabled = field.hidden; });
      });
    }
    type.addEventListener("change", shape);
    shape();
  }

  document.addEventListener("DOMContentLoaded", function () {
    init(document);
    setUpEvaluatorForm();
    setUpFilters();
    setUpLive();
    setUpSessionLive();
    setUpColumnsMenu();
    markFound();
  });
  document.addEventListener("htmx:afterSwap", function (event) { init(event.detail.target); });
  // An outerHTML swap (score and note panels) replaces its target: the new content is
  // what htmx:load names.
  document.addEventListener("htmx:load", function (event) { init(event.detail.elt); });
})();
