"""The core: keys, records, errors, contexts and settings. Depends on nothing else in cqrs."""
