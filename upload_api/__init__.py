"""The HTTP API and its authorizer: uploads, jobs, outputs, webhooks and the web page.

``routes`` holds one powertools Router per resource, ``domain_logic`` the plain,
typed work (it takes its ports as arguments and never imports boto3); the
handlers include the routes, check tokens and answer.
"""
