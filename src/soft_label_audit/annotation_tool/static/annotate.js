// Annotation page: one item at a time, mouse or keyboard, response time measured here
// (from the moment the image is on screen to the moment the answer is sent).
"use strict";

(function () {
  const app = document.getElementById("app");
  const token = app.dataset.token;
  const img = document.getElementById("item-image");
  const buttons = Array.from(document.querySelectorAll(".choice"));
  const unsureBtn = document.getElementById("unsure");
  const submitBtn = document.getElementById("submit");
  const errorBox = document.getElementById("error");
  const task = document.getElementById("task");
  const finished = document.getElementById("finished");
  const progressBar = document.getElementById("progress");
  const progressFill = document.getElementById("progress-fill");
  const progressText = document.getElementById("progress-text");

  const state = { item: null, choice: null, unsure: false, shownAt: null, busy: true };

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  function setProgress(p) {
    const total = Math.max(p.total, 1);
    progressFill.style.width = (100 * p.done / total).toFixed(1) + "%";
    progressBar.setAttribute("aria-valuenow", String(p.done));
    progressBar.setAttribute("aria-valuemax", String(p.total));
    progressText.textContent = p.done + " of " + p.total + " done";
  }

  function render() {
    buttons.forEach(function (b) {
      const on = b.dataset.choice === state.choice;
      b.classList.toggle("selected", on);
      b.setAttribute("aria-pressed", on ? "true" : "false");
      b.disabled = state.busy;
    });
    unsureBtn.classList.toggle("selected", state.unsure);
    unsureBtn.setAttribute("aria-pressed", state.unsure ? "true" : "false");
    unsureBtn.disabled = state.busy;
    submitBtn.disabled = state.busy || state.choice === null;
    app.dataset.itemId = state.item ? String(state.item.item_id) : "";
    app.dataset.ready = state.busy ? "false" : "true";
  }

  function show(body) {
    setProgress(body.progress);
    state.choice = null;
    state.unsure = false;
    if (body.done) {
      state.item = null;
      task.hidden = true;
      finished.hidden = false;
      app.dataset.finished = "true";
      state.busy = true;
      render();
      return;
    }
    state.item = body.item;
    state.busy = true;
    render();
    img.onload = function () {
      state.shownAt = performance.now();
      state.busy = false;
      render();
    };
    img.onerror = function () { showError("The image could not be loaded; reload the page."); };
    img.src = body.item.image;
  }

  async function call(method, path, payload) {
    const init = { method: method, headers: { "X-Annotator-Token": token } };
    if (payload !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    const response = await fetch(path, init);
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    return { status: response.status, ok: response.ok, body: body };
  }

  async function loadNext() {
    state.busy = true;
    render();
    try {
      const r = await call("GET", "/api/next");
      if (r.status === 503) {  // the database or the queue is busy: ask again shortly
        showError((r.body && r.body.error) || "The server is busy; retrying…");
        setTimeout(loadNext, 2000);
        return;
      }
      if (!r.ok) { showError((r.body && r.body.error) || ("error " + r.status)); return; }
      showError("");
      show(r.body);
    } catch (e) {
      showError("The server cannot be reached; your answers so far are saved. Retrying…");
      setTimeout(loadNext, 2000);
    }
  }

  async function submit() {
    if (state.busy || state.choice === null || !state.item) return;
    const vote = {
      item_id: state.item.item_id,
      choice: state.choice,
      unsure: state.unsure,
      response_time: (performance.now() - state.shownAt) / 1000,
    };
    state.busy = true;
    render();
    try {
      const r = await call("POST", "/api/vote", vote);
      if (r.ok && r.body && r.body.next_error) {
        // the answer is saved; only the next item is late: fetch it again shortly
        showError(r.body.next_error);
        setTimeout(loadNext, 2000);
        return;
      }
      if (r.ok) { showError(""); show(r.body); return; }
      showError((r.body && r.body.error) || ("error " + r.status));
      if (r.status === 409 || r.status === 403) { await loadNext(); return; }
      state.busy = false;
      render();
    } catch (e) {
      showError("The server cannot be reached; try again in a moment.");
      state.busy = false;
      render();
    }
  }

  function choose(choice) {
    if (state.busy) return;
    state.choice = choice;
    render();
  }

  function toggleUnsure() {
    if (state.busy) return;
    state.unsure = !state.unsure;
    render();
  }

  buttons.forEach(function (b) {
    b.addEventListener("click", function () { choose(b.dataset.choice); });
  });
  unsureBtn.addEventListener("click", toggleUnsure);
  submitBtn.addEventListener("click", submit);

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key;
    if (/^[0-9]$/.test(key)) { choose(key); }
    else if (key === "n" || key === "N") { choose("none"); }
    else if (key === "u" || key === "U") { toggleUnsure(); }
    else if (key === "Enter") { submit(); }
    else { return; }
    event.preventDefault();
  });

  loadNext();
})();
