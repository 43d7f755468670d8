"""Platform adapters: each turns a platform's events into conversation keys and text."""
