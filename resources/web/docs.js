// Swagger UI from the local swagger-ui-bundle package; the token from the web client's sign-in.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  const token = sessionStorage.getItem("ragdesk-token");
  window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    requestInterceptor: function (req) {
      if (token) { req.headers.Authorization = "Bearer " + token; }
      return req;
    },
  });
});
