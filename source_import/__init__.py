"""Import from a URL: the function that fetches a job's ``source_url`` into its
upload key, after which the pipeline runs as for a browser upload.

``domain_logic`` holds the work (it takes its ports as arguments and never
imports boto3); the handler reads the import queue and wires the adapters.
"""
