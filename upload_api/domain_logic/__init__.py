"""What the upload API and the status function do, free of AWS: ports in, results out."""
