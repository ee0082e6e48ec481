//! The in-memory [`BotRepository`](super::BotRepository): the model the SQLite store is
//! tested against, and a test double for services. (Implemented by the SQLite store's
//! author together with the conformance suite.)

/// An in-memory bot registry (work in progress).
#[derive(Debug, Default)]
pub struct MemoryRepository {}
