// The rating page, better with JavaScript: the reasons appear after a bad grade, the form is checked
// before it is sent (the server checks the same again), and a second tap cannot send it twice.
(function () {
  "use strict";
  var form = document.getElementById("rate");
  if (!form) return;
  var badPart = document.getElementById("bad-part");
  var error = document.getElementById("error");
  var button = form.querySelector("button[type=submit]");

  function chosen() { return form.querySelector("input[name=grade]:checked"); }
  function isBad() { var c = chosen(); return !!c && c.getAttribute("data-bad") === "true"; }
  function reasons() {
    return Array.prototype.map.call(form.querySelectorAll("input[name=reasons]:checked"), function (i) { return i.value; });
  }
  function show(message) {
    error.textContent = message;
    error.hidden = !message;
    if (message) { error.setAttribute("tabindex", "-1"); error.focus(); }
  }
  function update() { badPart.hidden = !isBad(); }

  form.addEventListener("change", function (e) {
    if (e.target.name === "grade") { update(); if (!error.hidden) show(""); }
  });
  form.addEventListener("submit", function (e) {
    var text = form.querySelector("#text").value.trim();
    var picked = reasons();
    var problem = "";
    if (!chosen()) problem = form.getAttribute("data-need-grade");
    else if (isBad() && picked.length === 0 && !text) problem = form.getAttribute("data-need-reason");
    else if (isBad() && picked.length === 1 && picked[0] === "other" && !text) problem = form.getAttribute("data-need-text");
    if (problem) { e.preventDefault(); show(problem); return; }
    if (!isBad()) {  // a good grade sends no reasons
      Array.prototype.forEach.call(form.querySelectorAll("input[name=reasons]"), function (i) { i.checked = false; });
    }
    button.disabled = true;
  });
  update();
})();
