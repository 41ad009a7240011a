"""cqrs: CQRS and event sourcing on Amazon DynamoDB."""
