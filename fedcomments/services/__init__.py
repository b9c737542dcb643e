"""The domain API: every function takes the Runtime first and owns its transactions."""
