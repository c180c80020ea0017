/* The index page (index.html); a file of its own so the Content-Security-Policy can forbid inline script. */
(function () {
  "use strict";
  var form = document.getElementById("signin-form");
  var input = document.getElementById("token-input");
  var errorBox = document.getElementById("sign-in-error");
  var signedIn = document.getElementById("signed-in");
  var signOut = document.getElementById("sign-out");
  var current = null;

  function target(role) { return role === "creator" ? "/creator" : "/buyer"; }
  function showErr(key, extra) {
    errorBox.hidden = !key;
    errorBox.setAttribute("data-key", key || "");
    errorBox.textContent = key ? RR.t(key) + (extra ? " (" + extra + ")" : "") : "";
  }
  function showSignedIn(me) {
    current = me;
    form.hidden = true;
    signedIn.hidden = false;
    signOut.hidden = false;
    document.getElementById("signed-role").textContent = RR.roleLabel(me.role);
    document.getElementById("signed-subject").textContent = me.subject || "";
    document.getElementById("continue").setAttribute("href", target(me.role));
  }

  RR.applyI18n();
  RR.wireChrome();
  RR.onLang(function () {
    if (current) showSignedIn(current);
    if (errorBox.getAttribute("data-key")) showErr(errorBox.getAttribute("data-key"));
  });

  if (/[?&]expired=1/.test(window.location.search)) {
    showErr("err_expired");
    history.replaceState(null, "", "/");
  }

  if (RR.getToken()) {
    RR.api("/api/v1/me", null, { noRedirect: true }).then(showSignedIn, function (err) {
      if (err.status === 401) RR.clearToken();
    });
  }

  form.addEventListener("submit", function (evt) {
    evt.preventDefault();
    var token = input.value.trim().replace(/^Bearer\s+/i, "");
    if (!token) { showErr("signin_empty"); return; }
    showErr(null);
    var btn = document.getElementById("sign-in");
    btn.disabled = true;
    RR.api("/api/v1/me", null, { token: token, noRedirect: true }).then(function (me) {
      RR.setToken(token);
      input.value = "";
      window.location.href = target(me.role);
    }, function (err) {
      btn.disabled = false;
      if (err.status === 401) showErr("signin_bad");
      else showErr("err_generic", err.message);
    });
  });
})();
