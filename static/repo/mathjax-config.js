// MathJax 2 settings for notebooks rendered by the repository (the same
// delimiters as JupyterLab). A file, not an inline script: the view's
// Content-Security-Policy allows scripts from the hub only.
window.MathJax = {
  tex2jax: {
    inlineMath: [["$", "$"], ["\\(", "\\)"]],
    displayMath: [["$$", "$$"], ["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  TeX: { equationNumbers: { autoNumber: "AMS", useLabelIds: true } },
  // jupyter-server-mathjax ships the STIX-Web fonts only.
  "HTML-CSS": {
    availableFonts: ["STIX-Web"],
    preferredFont: "STIX-Web",
    webFont: "STIX-Web",
    imageFont: null,
    linebreaks: { automatic: true },
  },
  displayAlign: "center",
  messageStyle: "none",
};
