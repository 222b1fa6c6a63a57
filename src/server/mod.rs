//! The reactor and the connections: one `mio::Poll` on one thread, a slab
//! of connection state machines, and the few system calls they need. This
//! is where bytes move; what they say is decided elsewhere.

pub mod child;
pub mod clock;
pub mod connection;
pub mod log;
pub mod reactor;
pub mod sys;
