"""The `vidpipe` command line: the local stack, packaging, and a client of the HTTP API.

Nothing here is packaged into the Lambda functions."""
