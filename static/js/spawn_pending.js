// Follows a server's start through the hub's progress stream (EventSource).
(function () {
  "use strict";
  const section = document.getElementById("spawn-pending");
  const bar = document.getElementById("progress-bar");
  const message = document.getElementById("progress-message");
  const source = new EventSource(section.dataset.progressUrl);

  source.onmessage = function (event) {
    const data = JSON.parse(event.data);
    bar.style.width = (data.progress || 0) + "%";
    if (data.message) {
      message.textContent = data.message;
    }
    if (data.ready) {
      source.close();
      window.location.href = section.dataset.nextUrl;
    } else if (data.failed) {
      source.close();
      window.location.href = section.dataset.failedUrl;
    }
  };
  source.onerror = function () {
    // the hub restarted or the connection broke: the page itself knows the state
    source.close();
    window.setTimeout(function () { window.location.reload(); }, 2000);
  };
})();
