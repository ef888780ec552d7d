"""Several processes sharing users by consistent hashing."""
