"""What the upload API does, free of AWS: ports in, results out."""
