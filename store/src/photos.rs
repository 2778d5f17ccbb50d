//! Photos of trees, stored content-addressed on disk beside the database.
