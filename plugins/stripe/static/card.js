// Stripe Elements for billing's forms: save a card with confirmCardSetup, finish 3-D Secure with
// confirmCardPayment. The card never passes through the portal; only the SetupIntent id does.
(function () {
  "use strict";
  function setupCard(box) {
    var stripe = Stripe(box.dataset.publishableKey);
    var card = stripe.elements().create("card");
    card.mount(box.querySelector(".card-element"));
    var form = box.closest("form");
    var error = box.querySelector("[data-card-error]");
    var busy = false;
    form.addEventListener("submit", function (event) {
      var choice = form.querySelector('input[name="method"]:checked');
      if (choice && choice.value !== "new") { return; }  // a saved card: nothing to collect
      event.preventDefault();
      if (busy) { return; }
      busy = true;
      var button = form.querySelector('[type="submit"]');
      if (button) { button.disabled = true; }
      stripe.confirmCardSetup(box.dataset.clientSecret, {payment_method: {card: card}})
        .then(function (result) {
          if (result.error) {
            error.textContent = (result.error && result.error.message) || box.dataset.msgFailed;
            error.hidden = false;
            busy = false;
            if (button) { button.disabled = false; }
            return;
          }
          form.submit();  // the server checks the SetupIntent with Stripe
        });
    });
  }
  function authenticate(el) {
    var stripe = Stripe(el.dataset.publishableKey);
    stripe.confirmCardPayment(el.dataset.clientSecret).then(function () {
      // Whatever the answer, the server asks Stripe and shows the outcome.
      window.location.assign(el.dataset.returnUrl);
    });
  }
  document.querySelectorAll("[data-stripe-card]").forEach(setupCard);
  document.querySelectorAll("[data-stripe-authenticate]").forEach(authenticate);
})();
