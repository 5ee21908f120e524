"""Context records: tenant JSON documents under (namespace, key) that prompts bind to."""
