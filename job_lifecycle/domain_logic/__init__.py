"""The job's life after its upload is asked for, free of AWS: ports in, results out."""
