"""The HTTP API's routes, one powertools Router per resource (uploads, jobs,
outputs, webhooks, the web page) plus the error answers; the API handler
(upload_api.handlers.api) includes them all. Routes parse the request, call
upload_api.domain_logic and answer; errors become answers in ``errors``, never
by try/except in a route."""
