// Swagger UI on this gateway's own OpenAPI document (relative: the app may sit under a
// path prefix); "Try it out" sends requests here. No remote validator badge.
window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
