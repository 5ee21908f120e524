"""Usage limits per tenant: requests per minute and a monthly spend cap, kept as data."""
