"""What happens to a job after its upload is asked for: the status function records every
pipeline event on it, the sweep ends the jobs that would otherwise wait forever, and the
webhook function tells the owner's URLs when a job is ready or failed.

``domain_logic`` holds the plain, typed work (it takes its ports as arguments
and never imports boto3); handlers parse, call the domain and answer.
"""
