// A run's page follows the run through its event stream (EventSource) until it ends.
(function () {
  "use strict";
  const section = document.getElementById("run");
  const finished = ["completed", "failed", "cancelled"];
  if (!section || finished.includes(document.getElementById("run-status").textContent)) {
    return;
  }
  const source = new EventSource(section.dataset.eventsUrl);

  function show(run) {
    document.getElementById("run-status").textContent = run.status;
    const waiting = document.getElementById("run-waiting");
    waiting.textContent = run.waiting || "";
    waiting.hidden = !run.waiting;
    document.getElementById("run-cells").textContent = run.cells_done + " / " + run.cells_total;
    const bar = document.getElementById("progress-bar");
    bar.style.width = (run.cells_total ? (100 * run.cells_done) / run.cells_total : 0) + "%";
    bar.parentElement.setAttribute("aria-valuenow", run.cells_done);
    bar.parentElement.setAttribute("aria-valuemax", run.cells_total);
    const list = document.getElementById("run-messages");
    list.replaceChildren(...run.messages.map(function (message) {
      const item = document.createElement("li");
      item.className = "run-message-" + message.level.toLowerCase();
      item.textContent = message.level + " · " + message.text;
      return item;
    }));
    if (run.output_path) {
      const output = document.getElementById("run-output");
      output.querySelector("a").textContent = run.output_path;
      output.hidden = false;
    }
    if (run.error) {
      document.getElementById("run-error-text").textContent = run.error.ename + ": " + run.error.evalue;
      document.getElementById("run-error").hidden = false;
    }
  }

  source.onmessage = function (event) {
    const run = JSON.parse(event.data);
    show(run);
    if (finished.includes(run.status)) {
      source.close();
    }
  };
  source.onerror = function () {
    source.close();
    window.setTimeout(function () { window.location.reload(); }, 2000);
  };
})();
