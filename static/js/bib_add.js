// gilhub "add references" page: the one-entry form shows the fields of the chosen entry type
// and marks the required ones (without JavaScript every field is shown, marked for the type
// the page was rendered with; the hub checks the required fields either way).
(function () {
  "use strict";

  var select = document.querySelector("select[data-type-fields]");
  if (!select) {
    return;
  }
  var typeFields = JSON.parse(select.getAttribute("data-type-fields"));

  function mark(label, text) {
    var name = label.querySelector("span");
    var star = name.querySelector(".required-mark");
    if (text === "*" && !star) {
      star = document.createElement("span");
      star.className = "required-mark";
      star.setAttribute("aria-hidden", "true");
      star.textContent = "*";
      name.insertBefore(star, name.querySelector(".one-of"));
    } else if (text !== "*" && star) {
      star.remove();
    }
  }

  function showFieldsOf(entryType) {
    var fields = typeFields[entryType];
    document.querySelectorAll("label[data-field]").forEach(function (label) {
      var name = label.getAttribute("data-field");
      var input = label.querySelector("input");
      var required = fields.required.indexOf(name) >= 0;
      label.hidden = fields.shown.indexOf(name) < 0;
      input.required = required;
      mark(label, required ? "*" : "");
      var oneOf = fields.one_of[name];
      label.querySelector(".one-of").textContent = oneOf ? "(" + oneOf + ": one required)" : "";
    });
  }

  select.addEventListener("change", function () { showFieldsOf(select.value); });
  showFieldsOf(select.value);
})();
