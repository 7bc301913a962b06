// The sandbox card widget: turns a *test* card number into a token in the browser, so the
// number itself is never sent. Any other number is refused here.
(function () {
  "use strict";
  var CARDS = {
    "4242424242424242": ["ok", "visa"],
    "5555555555554444": ["ok", "mastercard"],
    "4000000000000002": ["decline", "visa"],
    "4000000000000341": ["decline", "visa"],
    "4000000000009995": ["funds", "visa"],
    "4000002500003155": ["auth", "visa"]
  };
  document.querySelectorAll("[data-sandbox-card]").forEach(function (box) {
    var form = box.closest("form");
    var error = box.querySelector("[data-card-error]");
    var token = document.createElement("input");
    token.type = "hidden";
    token.name = "token";
    form.appendChild(token);
    function fail(message) {
      error.textContent = message;
      error.hidden = false;
    }
    form.addEventListener("submit", function (event) {
      var choice = form.querySelector('input[name="method"]:checked');
      if (choice && choice.value !== "new") { token.value = ""; return; }
      var number = box.querySelector("[data-sandbox-number]").value.replace(/[\s-]/g, "");
      var month = parseInt(box.querySelector("[data-sandbox-month]").value, 10);
      var year = parseInt(box.querySelector("[data-sandbox-year]").value, 10);
      if (year < 100) { year += 2000; }
      var card = CARDS[number];
      if (!card) {
        event.preventDefault();
        return fail(box.dataset.msgNumber || "Use one of the test card numbers shown above.");
      }
      if (!(month >= 1 && month <= 12) || !(year >= 2000 && year <= 2100)) {
        event.preventDefault();
        return fail(box.dataset.msgExpiry || "Enter the expiry month (1-12) and year.");
      }
      error.hidden = true;
      token.value = ["sbx", card[0], card[1], number.slice(-4),
                     ("0" + month).slice(-2), String(year)].join("_");
    });
  });
})();
