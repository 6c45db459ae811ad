// Follows a server's start through the hub's progress stream (EventSource): the step it
// is at, the time since the start was asked for, and a link to the log once it is slow.
(function () {
  "use strict";
  const section = document.getElementById("spawn-pending");
  const bar = document.getElementById("progress-bar");
  const progress = bar.parentElement;
  const message = document.getElementById("progress-message");
  const elapsed = document.getElementById("spawn-elapsed");
  const slow = document.getElementById("spawn-slow");
  const steps = Array.from(document.querySelectorAll("#spawn-steps li"));
  const queued = steps[0];
  queued.dataset.label = queued.textContent;
  const slowAfter = Number(section.dataset.slowAfter);
  const loadedAt = Date.now() - Number(section.dataset.elapsed) * 1000;

  function showPhase(phase) {
    const current = steps.findIndex(function (step) { return step.dataset.phase === phase; });
    if (current < 0) {
      return;
    }
    steps.forEach(function (step, index) {
      step.classList.toggle("done", index < current);
      step.classList.toggle("current", index === current);
      if (index === current) {
        step.setAttribute("aria-current", "step");
      } else {
        step.removeAttribute("aria-current");
      }
    });
  }

  function tick() {
    const seconds = Math.max(0, Math.floor((Date.now() - loadedAt) / 1000));
    elapsed.textContent = seconds < 60 ? seconds + " s" : Math.floor(seconds / 60) + " min " + (seconds % 60) + " s";
    if (seconds >= slowAfter) {
      slow.hidden = false;
    }
  }

  showPhase(section.dataset.phase);
  tick();
  const timer = window.setInterval(tick, 1000);
  const source = new EventSource(section.dataset.progressUrl);

  source.onmessage = function (event) {
    const data = JSON.parse(event.data);
    bar.style.width = (data.progress || 0) + "%";
    progress.setAttribute("aria-valuenow", String(data.progress || 0));
    if (data.phase) {
      showPhase(data.phase);
    }
    if (data.queue_position) {
      queued.textContent = queued.dataset.label + " (number " + data.queue_position + " in line)";
    }
    if (data.message) {
      message.textContent = data.message;
    }
    if (data.ready || data.failed) {
      source.close();
      window.clearInterval(timer);
      window.location.href = data.ready ? section.dataset.nextUrl : section.dataset.failedUrl;
    }
  };
  source.onerror = function () {
    // the hub restarted or the connection broke: the page itself knows the state
    source.close();
    window.setTimeout(function () { window.location.reload(); }, 2000);
  };
})();
