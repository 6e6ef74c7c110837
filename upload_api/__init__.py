"""The upload API and the status function: HTTP routes, the job record's updates and their wiring.

``domain_logic`` holds the plain, typed work (it takes its ports as arguments
and never imports boto3); handlers parse, call the domain and answer.
"""
