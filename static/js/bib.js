// gilhub bibliography pages: copy-BibTeX buttons, and /hub/bib#KEY for entries on other pages.
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // http:// on a lab network: no Clipboard API, fall back to a selected textarea.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = document.execCommand("copy");
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.bib-copy");
    if (!button) {
      return;
    }
    var label = button.textContent;
    copyText(button.getAttribute("data-bibtex")).then(
      function () { button.textContent = "Copied"; },
      function () { button.textContent = "Copy failed: select the text"; }
    ).then(function () {
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  function showTarget() {
    var key = decodeURIComponent(window.location.hash.slice(1));
    if (!key || key === "bib-problems") {
      return;
    }
    var target = document.getElementById(key);
    if (target) {
      target.classList.add("bib-target");
      target.scrollIntoView({ block: "center" });
      return;
    }
    var list = document.querySelector("ol.bib-entries");
    if (list && !new URLSearchParams(window.location.search).has("q")) {
      // The entry is on another page of the list: ask the hub which one.
      var url = new URL(window.location.href);
      url.hash = "";
      url.searchParams.set("around", key);
      url.searchParams.delete("page");
      window.location.replace(url.toString());
    }
  }

  window.addEventListener("hashchange", function () {
    document.querySelectorAll(".bib-target").forEach(function (el) {
      el.classList.remove("bib-target");
    });
    showTarget();
  });
  showTarget();
})();
