//! (filled in by the redesign of issue 10)
