"""gRPC adapters: translate the wire, call the use cases, map domain errors to status codes."""
