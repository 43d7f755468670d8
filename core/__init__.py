"""backtrack's platform-neutral core: settings, storage, the agent and the conversation service."""
