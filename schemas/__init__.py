"""Event and report schemas: pydantic models and the decoder. Depends on nothing internal."""
