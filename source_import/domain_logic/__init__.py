"""What the import function does, free of AWS: ports in, results out."""
