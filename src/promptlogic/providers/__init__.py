"""Provider connections, the model catalog and prices, the client factory, the offline provider."""
