//! Ports: the traits a backend implements, split by role.
//!
//! A store implements only the roles it can fill; generic code asks for exactly the
//! roles it uses. [`EventStore`] is every write-side role at once and is implemented
//! for free by any type that has them all.
//!
//! Every port is also implemented for `&T` and `Arc<T>`, so a store can be shared.

mod dead_letters;
mod event_store;
mod lease;
mod read_model;
mod subscription;

pub use dead_letters::{DeadLetters, DynDeadLetters};
pub use event_store::{
    AppendRequest, AppendResult, CommandLog, EventAppender, EventStore, ExpectedVersion, LogReader,
    Snapshot, SnapshotStore, StreamReader,
};
pub use lease::{DynLease, Lease};
pub use read_model::{
    DocumentChange, Index, ReadModelReader, ReadModelStore, ReadModelWriter, StoredDocument,
};
pub use subscription::{EventBatchStream, EventPublisher, EventSubscriber};

/// Implements a port for `&T` and `Arc<T>` by forwarding every method.
macro_rules! forward_port {
    ($trait:ident { $( fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )* }) => {
        impl<T: $trait + ?Sized> $trait for &T {
            $( fn $name(&self $(, $arg: $ty)*) -> $ret { (**self).$name($($arg),*) } )*
        }
        impl<T: $trait + ?Sized> $trait for std::sync::Arc<T> {
            $( fn $name(&self $(, $arg: $ty)*) -> $ret { (**self).$name($($arg),*) } )*
        }
    };
}
pub(crate) use forward_port;
