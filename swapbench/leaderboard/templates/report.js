// swapbench report: sortable tables and filters, no dependencies.
(function () {
  "use strict";

  // Sort a table's body rows by the clicked column: numbers by data-sort, text by the cell text;
  // a cell without a value (data-sort="") always goes last.
  function sortTable(table, col, descending) {
    var body = table.tBodies[0];
    var numeric = table.tHead.rows[0].cells[col].getAttribute("data-type") === "num";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].getAttribute("data-sort"), y = b.cells[col].getAttribute("data-sort");
      if (x === "" && y === "") return 0;
      if (x === "") return 1;
      if (y === "") return -1;
      var c = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
      return descending ? -c : c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.querySelector("button").addEventListener("click", function () {
        var descending = th.getAttribute("aria-sort") === "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", descending ? "descending" : "ascending");
        sortTable(table, col, descending);
      });
    });
  });

  // Filters: unticked methods hide their rows; a column whose backends are all unticked is hidden.
  var form = document.getElementById("filters");
  if (!form) return;
  function ticked(name) {
    var on = {};
    Array.prototype.forEach.call(form.querySelectorAll("input[name=" + name + "]"), function (box) {
      on[box.value] = box.checked;
    });
    return on;
  }
  function apply() {
    var methods = ticked("method"), backends = ticked("backend");
    Array.prototype.forEach.call(document.querySelectorAll("table.board"), function (table) {
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        row.hidden = methods[row.getAttribute("data-method")] === false;
      });
      var heads = table.tHead.rows[0].cells;
      Array.prototype.forEach.call(heads, function (th, col) {
        var own = (th.getAttribute("data-backends") || "").split(" ").filter(Boolean);
        var hide = own.length > 0 && own.every(function (b) { return backends[b] === false; });
        th.hidden = hide;
        Array.prototype.forEach.call(table.tBodies[0].rows, function (row) { row.cells[col].hidden = hide; });
      });
    });
  }
  form.addEventListener("change", apply);
  apply();
})();
