"""Workers on tables: load features, train per fold, combine models, score, compare tables."""
