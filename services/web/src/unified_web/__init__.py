"""unified-seller web: the seller's pages, a backend-for-frontend over the platform's public APIs."""
