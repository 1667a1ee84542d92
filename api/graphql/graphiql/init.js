// GraphiQL over this gateway. Queries and mutations are POSTed to this page's own URL
// (/graphql); subscriptions go over graphql-transport-ws on the same path. The headers
// editor's headers (X-Tenant-ID, Authorization) go with every request, and with a
// subscription as its connection_init payload (a browser cannot set WebSocket headers).
// A header left empty is not sent: until they are filled in, only `health` and
// introspection (the schema, the docs) answer.
(function () {
  "use strict";
  var httpUrl = window.location.origin + window.location.pathname;
  var wsUrl = httpUrl.replace(/^http/, "ws");
  var headersTemplate = JSON.stringify({ "X-Tenant-ID": "", Authorization: "Bearer " }, null, 2);

  function filledIn(headers) {
    var sent = {};
    Object.keys(headers || {}).forEach(function (name) {
      var value = String(headers[name]).trim();
      if (value && !/^bearer$/i.test(value)) sent[name] = value;
    });
    return sent;
  }

  function isSubscription(params, options) {
    var document = options && options.documentAST;
    if (!document) return /^\s*subscription\b/.test(params.query || "");
    return document.definitions.some(function (definition) {
      return (
        definition.kind === "OperationDefinition" &&
        definition.operation === "subscription" &&
        (!params.operationName ||
          (definition.name && definition.name.value === params.operationName))
      );
    });
  }

  function subscribe(params, headers) {
    return {
      subscribe: function (sink) {
        var client = graphqlWs.createClient({ url: wsUrl, connectionParams: headers });
        var dispose = client.subscribe(params, sink);
        return {
          unsubscribe: function () {
            dispose();
            client.dispose();
          },
        };
      },
    };
  }

  function fetcher(params, options) {
    var headers = filledIn(options && options.headers);
    if (isSubscription(params, options)) return subscribe(params, headers);
    return fetch(httpUrl, {
      method: "POST",
      headers: Object.assign(
        { "Content-Type": "application/json", Accept: "application/json" },
        headers,
      ),
      body: JSON.stringify(params),
    }).then(function (response) {
      return response.json();
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultHeaders: headersTemplate,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
      defaultEditorToolsVisibility: "headers",
      defaultQuery:
        "# Fill in X-Tenant-ID and Authorization (Bearer <api key>) in the Headers tab\n" +
        "# below; without them only health and the schema answer.\n{\n  health\n}\n",
    }),
  );
})();
