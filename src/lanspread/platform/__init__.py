"""Platform-specific calls, one small portable helper per concern (Linux and Windows)."""
