// MathJax 3 settings for notebooks rendered by the repository: the same
// delimiters as JupyterLab. Loaded as a file (the view's CSP allows no inline script).
window.MathJax = {
  tex: {
    inlineMath: [["$", "$"], ["\\(", "\\)"]],
    displayMath: [["$$", "$$"], ["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: { skipHtmlTags: ["script", "noscript", "style", "textarea", "pre", "code"] },
};
