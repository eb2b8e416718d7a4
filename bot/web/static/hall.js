// The window's rating device (bot/web/hall_devices.py): waits for a case completed at its window on a server-sent
// event stream, asks the grade and, for a bad one, the reasons, as the rating page does; thanks the person and goes
// back to its idle screen. Ratings wait in localStorage until the service has them (each with its own id, so a
// resend after a lost answer is stored once), and go out again when the network is back.
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('hall-data').textContent);
  var w = data.words;
  var QUEUE = 'hcp.hall.queue';
  var IDLE_AFTER = 6000;
  var current = null;
  var grade = null;
  var chosen = {};
  var idleTimer = null;
  var screens = ['idle', 'rating', 'reasons', 'thanks', 'revoked'];

  function $(id) { return document.getElementById(id); }

  function show(name) {
    screens.forEach(function (s) { $(s).hidden = s !== name; });
    document.body.setAttribute('data-screen', name);
  }

  function format(text, values) {
    return String(text).replace(/\{(\w+)\}/g, function (all, k) { return values[k] === undefined || values[k] === null ? '' : values[k]; });
  }

  function newId() {
    var bytes = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }

  function queue() {
    try { return JSON.parse(localStorage.getItem(QUEUE) || '[]'); } catch (e) { return []; }
  }

  function keep(list) {
    localStorage.setItem(QUEUE, JSON.stringify(list));
    $('status').textContent = list.length ? format(w['hall.pending'], { count: list.length }) : '';
  }

  var flushing = false;
  function flush() {
    if (flushing) return;
    var list = queue();
    if (!list.length) { keep(list); return; }
    flushing = true;
    var item = list[0];
    fetch('/hall/device/ratings', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(item)
    }).then(function (res) {
      flushing = false;
      if (res.status === 401) { show('revoked'); return; }
      // stored (201), stored before (200), or refused for good (4xx: rated already, window closed): done with it
      keep(queue().filter(function (q) { return q.rating_id !== item.rating_id; }));
      if (res.status >= 500) { $('status').textContent = w['mp.error']; return; }
      flush();
    }, function () {
      flushing = false;
      $('status').textContent = w['hall.offline'];
    });
  }

  function idle() {
    current = null;
    show('idle');
  }

  function showCase(c) {
    clearTimeout(idleTimer);
    current = c;
    grade = null;
    chosen = {};
    $('item').textContent = c.item_name;
    $('case-no').textContent = c.case_no;
    $('clerk').textContent = format(w['hall.clerk'], { staff_name: c.staff_name || '', staff_id: c.staff_id || '' });
    $('text').value = '';
    $('error').textContent = '';
    renderReasons();
    show('rating');
  }

  function renderGrades() {
    var box = $('grades');
    data.grades.forEach(function (g) {
      var b = document.createElement('button');
      b.type = 'button';
      b.className = 'hall-grade ' + (g.bad ? 'bad' : 'good');
      b.id = 'grade-' + g.code;
      b.textContent = g.label;
      b.addEventListener('click', function () { choose(g); });
      box.appendChild(b);
    });
  }

  function renderReasons() {
    var box = $('reason-list');
    box.textContent = '';
    data.reasons.forEach(function (r) {
      var b = document.createElement('button');
      b.type = 'button';
      b.className = 'hall-reason';
      b.id = 'reason-' + r.code;
      b.setAttribute('aria-pressed', 'false');
      b.textContent = r.label;
      b.addEventListener('click', function () {
        chosen[r.code] = !chosen[r.code];
        b.setAttribute('aria-pressed', chosen[r.code] ? 'true' : 'false');
        $('error').textContent = '';
      });
      box.appendChild(b);
    });
  }

  function choose(g) {
    if (!current) return;
    grade = g;
    if (g.bad) { show('reasons'); return; }
    send();
  }

  function send() {
    var reasons = Object.keys(chosen).filter(function (k) { return chosen[k]; });
    var text = $('text').value.trim();
    if (grade.bad && !reasons.length && !text) { $('error').textContent = w['page.need_reason']; return; }
    if (grade.bad && reasons.indexOf('other') >= 0 && !text) { $('error').textContent = w['page.need_text']; return; }
    var item = { token: current.token, grade: grade.code, rating_id: newId() };
    if (grade.bad) { item.reasons = reasons; if (text) item.text = text; }
    keep(queue().concat([item]));
    flush();
    current = null;
    show('thanks');
    idleTimer = setTimeout(idle, IDLE_AFTER);
  }

  function listen() {
    var source = new EventSource('/hall/device/events');
    source.addEventListener('case', function (e) { showCase(JSON.parse(e.data)); });
    source.addEventListener('revoked', function () { source.close(); show('revoked'); });
    source.addEventListener('open', function () { flush(); });
  }

  $('submit').addEventListener('click', send);
  $('back').addEventListener('click', function () { show('rating'); });
  window.addEventListener('online', flush);
  setInterval(flush, 10000);
  renderGrades();
  keep(queue());
  idle();
  listen();
})();
