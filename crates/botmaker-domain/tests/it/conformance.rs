//! The shared repository conformance suite (`botmaker_testkit::conformance`) on the
//! in-memory repository: one test per check.

mod memory {
    use botmaker_domain::{BotRepository, Clock, MemoryRepository};

    fn memory(clock: Clock) -> Box<dyn BotRepository> {
        Box::new(MemoryRepository::with_clock(clock))
    }

    botmaker_testkit::conformance_tests!(memory);
}
