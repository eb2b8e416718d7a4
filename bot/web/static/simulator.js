// The simulator page: a phone, WeChat and a 12345 keypad talking to /simulator/api/…
// Every text the service says comes from the server already rendered from the catalogs;
// the labels of this page come from data attributes rendered the same way.
(function () {
  "use strict";
  var root = document.getElementById("sim");
  if (!root) return;
  var label = function (name) { return root.getAttribute("data-" + name) || ""; };
  var errorBox = document.getElementById("sim-error");
  var state = null;
  var busy = false;

  function $(id) { return document.getElementById(id); }

  function when(iso) {
    var d = new Date(iso);
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    // shown in the service's time zone, which the server wrote into the offset of "now"
    var offset = state && state.now ? state.now.slice(-6) : "+08:00";
    var sign = offset[0] === "-" ? -1 : 1;
    var mins = sign * (parseInt(offset.slice(1, 3), 10) * 60 + parseInt(offset.slice(4, 6), 10));
    var local = new Date(d.getTime() + mins * 60000);
    return local.getUTCFullYear() + "-" + pad(local.getUTCMonth() + 1) + "-" + pad(local.getUTCDate()) + " " +
      pad(local.getUTCHours()) + ":" + pad(local.getUTCMinutes());
  }

  // http(s) URLs in a message: up to a space, a quotation mark or CJK punctuation; a trailing full stop,
  // comma or bracket is the sentence's, not the link's.
  var URL_IN_TEXT = /https?:\/\/[^\s<>"'\u3000-\u303f\uff00-\uffef]+/g;

  // The message's text as text nodes, its http(s) URLs as links (DOM nodes only: never markup from a message).
  // A simulated rating link (/simulator/r/…) opens on the origin this page was opened from: the public URL in
  // the message may name an address this browser does not reach the service by.
  function linked(parent, text) {
    var at = 0;
    text.replace(URL_IN_TEXT, function (found, index) {
      var url = found.replace(/[.,;:!?)\]]+$/, "");
      var parsed;
      try { parsed = new URL(url); } catch (e) { return found; }
      if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return found;
      parent.appendChild(document.createTextNode(text.slice(at, index)));
      var a = document.createElement("a");
      a.href = parsed.pathname.indexOf("/simulator/r/") === 0 ? parsed.pathname + parsed.search : parsed.href;
      a.target = "_blank";
      a.rel = "noopener";
      a.textContent = url;
      parent.appendChild(a);
      at = index + url.length;
      return found;
    });
    parent.appendChild(document.createTextNode(text.slice(at)));
  }

  function code(text) {
    var c = document.createElement("code");
    c.textContent = text;
    return c;
  }

  // Names (message keys, value names) as code, joined the page language's way.
  function codes(names) {
    var all = document.createDocumentFragment();
    names.forEach(function (name, i) {
      if (i) all.appendChild(document.createTextNode(label("tpl-separator")));
      all.appendChild(code(name));
    });
    return all;
  }

  // An element holding a label whose {placeholders} are filled with texts or nodes.
  function filled(tag, text, values) {
    var el = document.createElement(tag);
    var at = 0;
    text.replace(/\{(\w+)\}/g, function (all, name, index) {
      el.appendChild(document.createTextNode(text.slice(at, index)));
      var value = values[name];
      el.appendChild(value === undefined ? document.createTextNode(all)
        : (typeof value === "object" ? value : document.createTextNode(String(value))));
      at = index + all.length;
      return all;
    });
    el.appendChild(document.createTextNode(text.slice(at)));
    return el;
  }

  function provider(name) { return label("provider-" + name) || name; }

  // Under an SMS the service sent: its message key and what each template provider of the policy would be
  // sent instead of the text (the template and its values), with what that provider would not send or may refuse.
  function preview(tpl) {
    var box = document.createElement("div");
    box.className = "tpl";
    var head = function (el) {
      el.appendChild(document.createTextNode(label("tpl-key") + " "));
      el.appendChild(code(tpl.key));
      return el;
    };
    var facts = document.createElement("dl");
    var warnings = [];
    tpl.providers.forEach(function (p) {
      var name = provider(p.provider);
      if (!p.request) { warnings.push(filled("p", label("tpl-absent"), {provider: name})); return; }
      var dt = document.createElement("dt");
      dt.appendChild(document.createTextNode(name + " · " + label("tpl-template") + " "));
      dt.appendChild(code(p.request.TemplateCode || p.request.TemplateId));
      var dd = document.createElement("dd");
      if (!p.names.length) {
        dd.textContent = label("tpl-no-values");
      } else {
        var aliyun = p.provider === "aliyun";
        dd.appendChild(document.createTextNode(label(aliyun ? "tpl-by-name" : "tpl-in-order") + " "));
        dd.appendChild(code(JSON.stringify(aliyun ? p.request.TemplateParam : p.request.TemplateParamSet)));
      }
      dt.setAttribute("data-provider", p.provider);
      facts.appendChild(dt);
      facts.appendChild(dd);
      if (p.missing.length) warnings.push(filled("p", label("tpl-no-value"), {provider: name, names: codes(p.missing)}));
      if (p.too_long.length) {
        warnings.push(filled("p", label("tpl-long-" + p.provider),
          {provider: name, names: codes(p.too_long), max: p.max}));
      }
    });
    if (facts.childNodes.length) {
      var details = document.createElement("details");
      details.appendChild(head(document.createElement("summary")));
      details.appendChild(facts);
      box.appendChild(details);
    } else {
      box.appendChild(head(document.createElement("p")));
    }
    warnings.forEach(function (w) { w.className = "tpl-warn"; box.appendChild(w); });
    return box;
  }

  function keys(list) {
    var ul = document.createElement("ul");
    ul.className = "keys";
    list.forEach(function (key) {
      var li = document.createElement("li");
      li.appendChild(code(key));
      ul.appendChild(li);
    });
    return ul;
  }

  // The template check: per provider, the required messages without a template (the service would refuse to
  // start with that provider) and the others without one (not sent).
  function checked(doc) {
    var holder = $("template-check");
    holder.textContent = "";
    if (!doc.configured) holder.appendChild(filled("p", label("check-none"), {}));
    doc.providers.forEach(function (p) {
      var name = provider(p.provider);
      var part = document.createElement(p.missing.length ? "details" : "div");
      part.className = "check";
      part.setAttribute("data-provider", p.provider);
      if (p.missing.length) {
        part.open = !!doc.configured;
        var summary = filled("summary", label("check-missing"), {provider: name, count: p.missing.length});
        summary.className = "tpl-warn";
        part.appendChild(summary);
        var missing = keys(p.missing);
        missing.setAttribute("data-missing", "");
        part.appendChild(missing);
      } else {
        part.appendChild(filled("p", label("check-complete"), {provider: name}));
      }
      if (p.unsent.length) {
        part.appendChild(filled("p", label("check-unsent"), {provider: name}));
        part.appendChild(keys(p.unsent));
      }
      holder.appendChild(part);
    });
  }

  function bubble(entry, spoken) {
    var div = document.createElement("div");
    if (entry.dir === "system") {
      div.className = "bubble spoken";
      if (entry.counts) {
        var c = entry.counts;
        div.textContent = label("tick") + " " + label("tick-counts").replace(/\{(\w+)\}/g, function (all, name) {
          return c[name] === undefined ? all : String(c[name]);
        });
      } else {
        div.textContent = entry.text + (entry.case_no ? " " + entry.case_no : "");
      }
    } else {
      div.className = "bubble " + (entry.dir === "in" ? "in" : (spoken ? "spoken" : "out"));
      var text = entry.text;
      if (spoken && entry.dir === "in") text = entry.silence ? label("silence") : label("key") + " " + text;
      linked(div, text);
    }
    div.setAttribute("data-dir", entry.dir);
    var time = document.createElement("time");
    time.textContent = when(entry.at);
    div.appendChild(time);
    if (entry.template) div.appendChild(preview(entry.template));
    if (entry.audio) {  // the centre's recording of this prompt ([hotline.recordings]), played instead of the voice
      var audio = document.createElement("small");
      audio.className = "audio";
      audio.textContent = "\u266a " + entry.audio;
      div.appendChild(audio);
    }
    return div;
  }

  function fill(screen, entries, spoken) {
    screen.textContent = "";
    if (!entries.length) {
      var p = document.createElement("p");
      p.className = "muted";
      p.textContent = label("empty");
      screen.appendChild(p);
    }
    entries.forEach(function (e) { screen.appendChild(bubble(e, spoken)); });
    screen.scrollTop = screen.scrollHeight;
  }

  function records(cases) {
    var holder = $("records");
    holder.textContent = "";
    if (!cases.length) { holder.textContent = label("none"); return; }
    cases.slice().reverse().forEach(function (c) {
      var box = document.createElement("details");
      box.className = "record";
      box.setAttribute("data-case", c.case_no);
      box.open = true;
      var summary = document.createElement("summary");
      var last = c.evaluations.length ? c.evaluations[c.evaluations.length - 1] : null;
      summary.textContent = c.case_no + " · " + c.item_name + (last ? " · " + last.grade +
        (last.reasons.length ? " [" + last.reasons.join(", ") + "]" : "") : "");
      box.appendChild(summary);
      var pre = document.createElement("pre");
      pre.className = "json";
      pre.tabIndex = 0;  // it scrolls: the keyboard must reach it
      pre.textContent = JSON.stringify({
        case_no: c.case_no, completed_at: c.completed_at, remind_at: c.remind_at, default_at: c.default_at,
        applicant: c.applicant, evaluations: c.evaluations, reminders: c.reminders,
        work_orders: c.work_orders.map(function (w) {
          return {id: w.id, status: w.status, due_at: w.due_at, grade: w.grade, reasons: w.reasons};
        })
      }, null, 2);
      box.appendChild(pre);
      holder.appendChild(box);
    });
  }

  function show(doc) {
    state = doc;
    $("clock").textContent = when(doc.now);
    $("clock").setAttribute("datetime", doc.now);
    $("identity").textContent = doc.phone + " · " + doc.openid;
    fill($("screen-sms"), doc.sms, false);
    fill($("screen-wechat"), doc.wechat, false);
    fill($("screen-phone"), doc.phone_log, true);
    $("call-state").textContent = doc.call ? label("in-call") + (doc.call.multi ? " " + label("reasons-keys") : "")
      : label("no-call");
    $("call").disabled = !!doc.call;
    $("hangup").disabled = $("silence").disabled = !doc.call;
    Array.prototype.forEach.call(document.querySelectorAll("#keypad button"), function (b) { b.disabled = !doc.call; });
    $("to-next").disabled = !doc.next_due;
    records(doc.cases);
    var ticks = doc.sms.filter(function (e) { return e.counts; });
    if (ticks.length) $("last-tick").textContent = bubble(ticks[ticks.length - 1]).firstChild.textContent;
  }

  function fail(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  function post(action, body) {
    if (busy) return Promise.resolve();
    busy = true;
    root.setAttribute("aria-busy", "true");
    return fetch("/simulator/api/" + action, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().then(function (doc) {
        if (!r.ok) { fail(doc.error || String(r.status)); return; }
        fail("");
        show(doc);
      });
    }).catch(function (e) { fail(String(e)); })
      .then(function () { busy = false; root.removeAttribute("aria-busy"); });
  }

  // tabs
  Array.prototype.forEach.call(document.querySelectorAll("[role=tab]"), function (tab) {
    tab.addEventListener("click", function () {
      Array.prototype.forEach.call(document.querySelectorAll("[role=tab]"), function (t) {
        var on = t === tab;
        t.setAttribute("aria-selected", on ? "true" : "false");
        $("panel-" + t.getAttribute("data-channel")).hidden = !on;
      });
    });
  });

  Array.prototype.forEach.call(document.querySelectorAll("form.compose"), function (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var input = form.querySelector("input[name=text]");
      var text = input.value;
      if (!text.trim()) return;
      post("text", {channel: form.getAttribute("data-channel"), text: text}).then(function () { input.value = ""; input.focus(); });
    });
  });

  $("case-sms").addEventListener("click", function () { post("case", {channel: "sms"}); });
  $("case-wechat").addEventListener("click", function () { post("case", {channel: "wechat"}); });
  Array.prototype.forEach.call(document.querySelectorAll("[data-hours]"), function (b) {
    b.addEventListener("click", function () { post("clock", {hours: parseFloat(b.getAttribute("data-hours"))}); });
  });
  $("to-next").addEventListener("click", function () { if (state && state.next_due) post("clock", {to: state.next_due}); });
  $("clock-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var value = $("clock-to").value;  // local wall time of the service's zone
    if (!value || !state) return;
    post("clock", {to: value + ":00" + state.now.slice(-6)});
  });
  $("call").addEventListener("click", function () { post("call"); });
  $("hangup").addEventListener("click", function () { post("hangup"); });
  $("silence").addEventListener("click", function () { post("keys", {digits: null}); });

  // The keypad: one key answers a grade question; at the reasons question keys gather until #.
  var gathered = "";
  Array.prototype.forEach.call(document.querySelectorAll("#keypad button"), function (b) {
    b.addEventListener("click", function () {
      var key = b.getAttribute("data-key");
      if (state && state.call && state.call.multi) {
        if (key === "#") { post("keys", {digits: gathered + "#"}); gathered = ""; } else { gathered += key; }
        $("call-state").textContent = label("in-call") + " " + gathered;
      } else {
        post("keys", {digits: key});
      }
    });
  });
  $("reset").addEventListener("click", function () { post("reset"); });

  fetch("/simulator/api/state", {credentials: "same-origin"}).then(function (r) { return r.json(); })
    .then(function (doc) { if (doc.now) show(doc); else fail(doc.error); });
  fetch("/simulator/api/templates", {credentials: "same-origin"}).then(function (r) { return r.json(); })
    .then(function (doc) { if (doc.providers) checked(doc); else fail(doc.error); })
    .catch(function (e) { fail(String(e)); });
})();
