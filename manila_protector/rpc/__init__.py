"""oslo.messaging: the RPC client API, the endpoint, notifications and the context serializer."""
