// The only script of the page (the CSP allows no inline script): the "print this list" button.
document.querySelectorAll("[data-print]").forEach(function (button) {
  button.addEventListener("click", function () { window.print(); });
});
