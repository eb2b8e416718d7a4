// The rating page, better with JavaScript: the reasons appear after a bad grade (and the box for opinions and
// suggestions after a good one, Shantou art. 23), the form is checked
// before it is sent (the server checks the same again), and a second tap cannot send it twice.
// In elder mode (form[data-steps]) one question a screen: the grade; after a bad grade the reasons, then
// the words; "next" and "back" move between them, and the focus goes to the question shown. Every error
// is written into the role="alert" box and given the focus, so that a screen reader says it at once.
(function () {
  "use strict";
  var form = document.getElementById("rate");
  if (!form) return;
  var badPart = document.getElementById("bad-part");
  var goodPart = document.getElementById("good-part");
  var error = document.getElementById("error");
  var button = form.querySelector("button[type=submit]");
  var next = document.getElementById("next");
  var back = document.getElementById("back");
  var stepped = form.hasAttribute("data-steps") && next && back;
  var ORDER = ["grade", "reasons", "text"];
  var step = "grade";

  function chosen() { return form.querySelector("input[name=grade]:checked"); }
  function isBad() { var c = chosen(); return !!c && c.getAttribute("data-bad") === "true"; }
  function reasons() {
    return Array.prototype.map.call(form.querySelectorAll("input[name=reasons]:checked"), function (i) { return i.value; });
  }
  function show(message) {
    error.textContent = message;
    error.hidden = !message;
    if (message) error.focus();
  }
  function problem() {
    var text = form.querySelector("#text").value.trim();
    var picked = reasons();
    if (!chosen()) return form.getAttribute("data-need-grade");
    if (isBad() && picked.length === 0 && !text) return form.getAttribute("data-need-reason");
    if (isBad() && picked.indexOf("other") !== -1 && !text) return form.getAttribute("data-need-text");
    return "";
  }

  // Elder mode: which question is on the screen, and which buttons go with it.
  function last() { return step === "text" || (step === "grade" && !!chosen() && !isBad()); }
  function buttons() {
    next.hidden = last();
    button.hidden = !last();
    back.hidden = step === "grade";
  }
  function first(name) {  // where the focus goes when a question is shown: its chosen answer, or its first
    var part = form.querySelector("[data-step=" + name + "]:not(.scope)");  // the grade, not the 一件事 choice
    return part.querySelector("input:checked") || part.querySelector("input, textarea");
  }
  function good() {  // the suggestion box: with a good grade, on the grade's screen
    if (goodPart) goodPart.hidden = !chosen() || isBad() || (stepped && step !== "grade");
  }
  function go(name, focus) {
    step = name;
    Array.prototype.forEach.call(form.querySelectorAll("[data-step]"), function (part) {
      part.hidden = part.getAttribute("data-step") !== name;
    });
    good();
    buttons();
    if (focus) first(name).focus();
  }

  form.addEventListener("change", function (e) {
    if (e.target.name !== "grade") return;
    if (stepped) buttons(); else badPart.hidden = !isBad();
    good();
    if (!error.hidden) { error.textContent = ""; error.hidden = true; }
  });
  form.addEventListener("submit", function (e) {
    if (stepped && !last()) {  // Enter on a question that is not the last one: the next question
      e.preventDefault();
      next.click();
      return;
    }
    var message = problem();
    if (message) {
      e.preventDefault();
      if (stepped && !chosen()) go("grade", false);
      show(message);
      return;
    }
    if (!isBad()) {  // a good grade sends no reasons, and no words typed for a bad one
      Array.prototype.forEach.call(form.querySelectorAll("input[name=reasons]"), function (i) { i.checked = false; });
      form.querySelector("#text").value = "";
    } else if (goodPart) {  // nor a bad grade the words of the suggestion box
      form.querySelector("#suggestion").value = "";
    }
    button.disabled = true;
  });

  if (stepped) {
    next.addEventListener("click", function () {
      if (step === "grade" && !chosen()) { show(form.getAttribute("data-need-grade")); return; }
      show("");
      go(ORDER[ORDER.indexOf(step) + 1], true);
    });
    back.addEventListener("click", function () {
      show("");
      go(ORDER[ORDER.indexOf(step) - 1], true);
    });
    var start = form.getAttribute("data-steps");
    go(ORDER.indexOf(start) > 0 && isBad() ? start : "grade", false);
  } else {
    badPart.hidden = !isBad();
    good();
  }
  if (!error.hidden) error.focus();  // the server's answer to a form it refused: said first
})();
