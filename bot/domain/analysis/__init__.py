"""Automatic rollback's analysis, pure: signals, their queries, the verdict and its evidence."""
