"""The customer API (/client/v1), assembled from the domains' services."""
